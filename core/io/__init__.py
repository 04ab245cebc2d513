"""Reading and writing what users hand in and get back: text tables and JSON (encodings, atomic
writes), safetensors checkpoints, Parquet input and Parquet result tables."""
