"""PostgreSQL: the embedded server, the pool and the migrations."""
