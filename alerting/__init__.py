"""kyoten.alerting: the alert bridge from Zabbix events to mail, Slack and PATLITE towers."""
