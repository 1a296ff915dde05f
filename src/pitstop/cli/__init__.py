"""The command line: `pitstop <noun> <verb>`, thin over the Pitstop object."""
