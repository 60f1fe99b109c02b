"""Training presets as TOML files (read by cli/mvcgc.py with tomllib; flags override them)."""
