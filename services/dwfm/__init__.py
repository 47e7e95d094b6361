"""EC2 DropletWorkflow Manager: droplet leases kept in DynamoDB, RunInstances, and the congestive re-lease workflow."""
