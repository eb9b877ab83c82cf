"""What every service process shares: `culture serve`, common settings, shutdown on signals."""
