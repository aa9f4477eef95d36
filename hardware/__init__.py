"""kyoten.hardware: PATLITE signal-tower protocols, transports and an emulator."""
