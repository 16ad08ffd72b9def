"""Control-pane widgets, one per file; each `draw(app)` edits only `app.state` or calls an app action."""
