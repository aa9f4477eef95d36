"""kyoten.common: the few helpers every part needs, importing no other kyoten part.

Only what must be the same everywhere lives here (secret redaction); each part keeps its own
logic in its own folder.
"""
