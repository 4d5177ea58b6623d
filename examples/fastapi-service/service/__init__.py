"""A small items service: FastAPI over PostgreSQL, with Redis as a read-through cache."""
