"""NLB health checking: checks targets and performs automatic AZ DNS failover through the authority."""
