"""A DNS Enactor (one per AZ): applies the newest plan endpoint by endpoint under the zone lock, then cleans up old trees."""
