"""Generated from protos/mailwright/render/v1; do not edit (run `make protos`)."""
