"""Exact analysis: the scenario as a continuous-time Markov chain, solved without sampling."""
