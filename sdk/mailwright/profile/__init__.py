"""Generated from protos/mailwright/profile; do not edit (run `make protos`)."""
