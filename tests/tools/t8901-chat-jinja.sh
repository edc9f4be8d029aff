#!/bin/sh
test_description='the Jinja renderer construct by construct: equal to jinja2 as transformers configures it, an error where jinja2 raises, and constructs outside the subset refused by name and line'
. "$(dirname "$0")/../lib/test-lib.sh"

# tests/oracle/jinja_check.py holds the cases (whitespace control, trim_blocks and
# lstrip_blocks, literals and operators, indexing and slicing by characters, loops and
# scopes, namespace, tests, filters, tojson, str/dict methods, raise_exception, Undefined).

test_expect_success 'every case renders as jinja2, errors where jinja2 raises, unsupported constructs refused' '
    "$PY" "$ORACLE/jinja_check.py" >out; rc=$?; cat out
    test $rc = 0 &&
    grep -q "^jinja: [0-9]* cases rendered as jinja2, [0-9]* errors where jinja2 raises, 19 of 19 unsupported constructs refused by name, 0 differ$" out
'

test_expect_success 'the 45 real templates of huggingface.js'"'"' tests: 43 rendered as jinja2, the other 2 refused by name' '
    "$PY" "$ORACLE/jinja_check.py" --suite "$MB_ROOT/tests/data/chat/hfjs-e2e.jsonl" >out; rc=$?; cat out
    test $rc = 0 &&
    grep -q "^suite: 43 of 45 templates rendered as jinja2, 2 refused, 0 differ$" out &&
    grep -q "^# refused: openbmb/MiniCPM3-4B: .*unsupported construct: {% call %}$" out
'

test_done
