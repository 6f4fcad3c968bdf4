"""The paper venue: simulated fills against the quotes the engine sees."""
