"""The app's widgets, one per area of the screen."""
