"""Storage: SQLAlchemy 2 models, Alembic migrations, SQLite (WAL) by default or PostgreSQL."""
