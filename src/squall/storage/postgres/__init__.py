"""The PostgreSQL backend: the SQLite modules' SQL and group commit, over psycopg."""
