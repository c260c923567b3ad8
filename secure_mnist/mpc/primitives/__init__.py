"""Two-party protocols on shared ring tensors: products, truncation, binary AND, comparison."""
