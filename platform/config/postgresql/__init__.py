"""Django's PostgreSQL backend with a health check that costs no round trip when there is nothing to check."""
