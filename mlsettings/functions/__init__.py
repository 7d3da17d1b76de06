"""Each Lambda function's environment as one typed contract, written by its stack and read by its handler."""
