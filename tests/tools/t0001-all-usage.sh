#!/bin/sh
test_description='every tool: --help, --version, usage errors, and a clean man page listing every option'
. "$(dirname "$0")/../lib/test-lib.sh"

for tool in $(ls "$MB_ROOT/bin"); do
    page="$MB_ROOT/man/$tool.1"
    test_expect_success "$tool --help exits 0 and prints Usage" "
        $tool --help >help &&
        grep '^Usage: $tool' help
    "
    test_expect_success "$tool --version names the version and compiler" "
        $tool --version >ver &&
        grep '^$tool (mb) ' ver && grep '^compiler: ' ver
    "
    test_expect_success "$tool: an unknown option is a usage error (exit 2)" "
        test_expect_code 2 $tool --no-such-option 2>err &&
        grep \"^$tool: error: unknown option '--no-such-option'\" err
    "
    test_expect_success "$tool: man page renders without warnings" "
        groff -man -ww -z '$page' 2>warn && ! test -s warn
    "
    test_expect_success "$tool: every --help option is in the man page" "
        $tool --help | sed -n 's/^ *\\(-., \\)\\{0,1\\}\\(--[a-z0-9-]*\\).*/\\2/p' >opts &&
        test -s opts &&
        groff -man -Tascii -rLL=400n -P-cbou '$page' >page.txt &&
        for o in \$(cat opts); do
            grep -q -e \"\$o\" page.txt || { echo \"missing \$o\"; exit 1; }
        done
    "
done

test_done
