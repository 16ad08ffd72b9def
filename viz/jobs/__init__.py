"""Background jobs of the viewer: the latest-wins render worker, the model loader, the exporter, the mesher.

Each runs on a thread of its own; the UI thread submits and polls, never waits. No GL here."""
