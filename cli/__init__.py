"""The `evidence` command: the one place that wires the API, the workers, the engine and the
demo estate together (api, workers and engine never import it)."""
