"""The platform's services: one package per service."""
