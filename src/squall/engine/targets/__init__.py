"""Rule targets: turning a match into deliveries (``routing``), delivering to buses and
HTTP endpoints (``runner``, ``http``), and their dead letters (``letters``)."""
