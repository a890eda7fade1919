"""Vector index (FAISS, derived) and metadata store (SQL, the source of truth)."""
