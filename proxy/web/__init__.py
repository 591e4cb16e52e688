"""HTTP layer: thin handlers per route group and the one place errors become HTTP statuses."""
