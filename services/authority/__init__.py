"""The Route 53-like DNS authority: authoritative DNS over UDP/TCP and the RouteControl gRPC API (atomic, durable change batches)."""
