"""Generated from protos/mailwright/delivery; do not edit (run `make protos`)."""
