"""DynamoDB's load-balancer fleet: each LB its own gRPC server on its own address, serving items and conditional writes."""
