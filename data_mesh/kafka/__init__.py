"""Kafka topics as targets: a day's rows as key/value messages, sent in transactions."""
