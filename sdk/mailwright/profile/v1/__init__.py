"""Generated from protos/mailwright/profile/v1; do not edit (run `make protos`)."""
