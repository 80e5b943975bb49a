"""Pure numpy pricing: market data, Heston (analytic and QE paths), calibration, autocallable payoff."""
