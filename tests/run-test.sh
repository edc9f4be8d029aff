#!/bin/sh
# prove --exec wrapper: shell tests run under sh, compiled tests are executed directly.
case "$1" in
*.sh) exec sh "$@" ;;
*) exec "$@" ;;
esac
