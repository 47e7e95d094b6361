"""The dependent clients: open-loop DynamoDB, launch, Lambda- and STS-like traffic, resolving DynamoDB through DNS."""
