"""The DNS Planner: tracks load-balancer health and capacity, emits generation-numbered regional plans, keeps plan history durably."""
