"""This platform's own Dagster objects; each module here is discovered by `load_from_defs_folder`."""
