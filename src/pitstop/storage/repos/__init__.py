"""Repositories: one module per aggregate; the only code that writes SQL for it."""
