"""Identity: who is calling, attested agent keys, and who may read what."""
