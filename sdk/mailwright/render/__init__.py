"""Generated from protos/mailwright/render; do not edit (run `make protos`)."""
