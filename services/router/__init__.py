"""The request router: the HTTP front door speaking DynamoDB's JSON protocol."""
