"""The Jinja renderer alone (tests/helpers/chat_render jinja) against jinja2 in the
environment transformers builds for chat templates (_compile_jinja_template: sandboxed,
trim_blocks, lstrip_blocks, loop controls, tojson = json.dumps, raise_exception).

    jinja_check.py
    jinja_check.py --suite CASES.jsonl     {"name", "template", "vars"} per line (real
                                           templates): each renders as jinja2 or is refused

Each case is a small template and its variables. Where jinja2 renders, mb must give the
same bytes; where jinja2 raises, mb must give an error. The UNSUPPORTED cases render in
jinja2 but are outside mb's subset: mb must refuse them with an error that names the
construct and the template line. Prints a summary; exit 1 on any difference.
"""
import json
import subprocess
import sys

from transformers.utils.chat_template_utils import _compile_jinja_template

MSGS = [{"role": "system", "content": "  Be brief.  "}, {"role": "user", "content": "Hi \u00e9\u4f60"},
        {"role": "assistant", "content": "Hello!", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1, "b": [1.5, "x"]}}}]}]

CASES = [
    # whitespace control, trim_blocks, lstrip_blocks, comments, trailing newline
    ("a  {{- 1 -}}  b\n", {}),
    ("  {% if true %}\n  x\n  {% endif %}\n  {{ 1 }}  \n{# c #}\ny\n", {}),
    ("{% if true %}\n  a  {%- if 1 -%}\n  b{% endif %}{% endif %}\n", {}),
    ("x {%+ if true %}y{% endif +%}\nz", {}),
    ("\t{%- for i in [1,2] %}\n\t{{ i }}\n\t{%- endfor %}\r\nend\r\n\n", {}),
    ("{#- comment -#}\n  a {#- c #}\n b", {}),
    ("line1\nline2\n", {}),
    # literals and operators
    ("{{ 'a\\tb\\n' ~ \"c\\\"d\" ~ 'e\\u00e9\\x41' }}", {}),
    ("{{ 1 + 2 * 3 - 4 // 3 }} {{ 7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 4 / 2 }}", {}),
    ("{{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1e-7 }} {{ 3.0 }} {{ 1/3 }} {{ 100000000000000000.0 }}", {}),
    ("{{ 7.5 % -2 }} {{ -7.5 // 2 }} {{ 7 // -2 }} {{ -7 % -3 }} {{ 2 ** 62 }} {{ 2 ** -1 }} {{ 1e308 * 10 }} {{ (-1) ** 1000000000001 }}", {}),
    ("{{ 'ab' * 3 }}{{ [1] * 2 }}{{ [1, 2] + [3] }}", {}),
    ("{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ 2 >= 3 }} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }}", {}),
    ("{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ (1 < 3) < 2 }} {{ 1 == 1 == 1 }} {{ 'a' in 'ab' in 'abc' }} {{ 2 > 1 not in [0] }}", {}),
    ("{% for x in l %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.depth }}{{ loop.depth0 }}{{ loop.revindex0 }};{% endfor %}", {"l": [1, 2, 3]}),
    ("{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }} {{ x in y }}", {}),
    ("{{ 1 and 'x' }}|{{ 0 or [] }}|{{ none or 'd' }}|{{ not '' }}|{{ not x }}", {}),
    ("{{ 'y' if x else 'n' }}|{{ 'y' if 0 }}|{{ 'a' if 1 else 'b' if 2 else 'c' }}", {}),
    ("{{ none }} {{ true }} {{ [1, 'a', none, true, 2.5] }} {{ {'a': 'x\\'y', 'b': \"q\\\"\"} }}", {}),
    ("{{ -x }}", {"x": 3}),
    # indexing, attributes, slicing
    ("{{ m[0]['role'] }} {{ m[-1].role }} {{ m[0].content }} {{ m[5] }}|{{ m[0].nothing }}|", {"m": MSGS}),
    ("{{ s[1:] }} {{ s[:-1] }} {{ s[::-1] }} {{ s[1:4:2] }} {{ s[-2:] }} {{ s[10:] }}|{{ s[0] }}{{ s[-1] }}", {"s": "h\u00e9llo\u4f60"}),
    ("{{ l[1:] }} {{ l[::-1] }} {{ l[:-1] }} {{ l[::2] }} {{ (l | length) }}", {"l": [1, 2, 3, 4]}),
    ("{{ d.a }} {{ d['b'] }} {{ d.z }}|{{ d.items() | list }}", {"d": {"a": 1, "b": 2}}),
    # statements
    ("{% for m in ms %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ m.role }};{% endfor %}", {"ms": MSGS}),
    ("{% for m in ms if m.role != 'system' %}{{ loop.index0 }}{{ m.role }}{% else %}none{% endfor %}", {"ms": MSGS}),
    ("{% for x in [] %}a{% else %}empty{% endfor %}{% for x in u %}b{% else %}undef{% endfor %}", {}),
    ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d | items %}{{ k }}{% endfor %}", {"d": {"z": 1, "a": [2]}}),
    ("{% for k in d %}{{ k }}{% endfor %}{% for c in 'ab\u00e9' %}[{{ c }}]{% endfor %}", {"d": {"z": 1, "a": 2}}),
    ("{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}", {}),
    ("{% set ns = namespace(n=0, s='') %}{% for i in range(5) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", {}),
    ("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("{% for i in range(1, 10, 3) %}{{ i }}{% endfor %}{% for i in range(3, 0, -1) %}{{ i }}{% endfor %}", {}),
    ("{% if a %}A{% elif b %}B{% elif c %}C{% else %}D{% endif %}", {"b": 0, "c": [1]}),
    ("{% for a in x %}{% for b in a %}{{ loop.index }}{{ b }}{% endfor %}{{ loop.index }}{% endfor %}", {"x": [[1, 2], [3]]}),
    ("{% set t = tool_call %}{% if t.function is defined %}{% set t = t.function %}{% endif %}{{ t.name }}", {"tool_call": MSGS[2]["tool_calls"][0]}),
    # tests
    ("{{ x is defined }} {{ u is defined }} {{ u is undefined }} {{ n is none }} {{ x is not none }}", {"x": 1, "n": None}),
    ("{{ s is string }} {{ d is mapping }} {{ l is iterable }} {{ u is iterable }} {{ s is iterable }} {{ 1 is number }} {{ 1.5 is float }} {{ 1 is integer }}", {"s": "a", "d": {}, "l": []}),
    ("{{ f is false }} {{ t is true }} {{ 0 is false }} {{ f is sameas false }} {{ 'a' is equalto 'a' }} {{ 3 is odd }} {{ 4 is even }} {{ 2 is in [1, 2] }}", {"f": False, "t": True}),
    ("{{ m.tool_calls is defined and m.tool_calls is not none }} {{ not m.content }} {{ not m.tool_calls }}", {"m": {"role": "user", "content": ""}}),
    # filters
    ("{{ s | trim }}|{{ s | length }}|{{ l | length }}|{{ u | length }}|{{ d | count }}|{{ u | trim }}|", {"s": " \u3000 a b \n", "l": [1, 2], "d": {"a": 1}}),
    ("{{ l | join(', ') }}|{{ l | join }}|{{ u | join }}|{{ ms | map(attribute='role') | join(',') if false }}", {"l": [1, "a", 2.5]}),
    ("{{ ms | selectattr('role', 'equalto', 'user') | list | length }} {{ ms | rejectattr('role', 'equalto', 'user') | list | length }} {{ ms | selectattr('tool_calls') | list | length }}", {"ms": MSGS}),
    ("{{ ['a', 'code_interpreter', 'b'] | reject('equalto', 'code_interpreter') | join(', ') }} {{ [0, 1, 2] | select | list }} {{ [0, 1, 2] | select('odd') | list }}", {}),
    ("{{ x | tojson }}\n{{ x | tojson(indent=4) }}\n{{ x | tojson(indent=2, sort_keys=true) }}\n{{ [] | tojson(indent=4) }}{{ {} | tojson }}", {"x": MSGS}),
    ("{{ 'a<b>&\"c\\'\u00e9\\n\\u0001' | tojson }} {{ 1.0 | tojson }} {{ 1e100 | tojson }} {{ none | tojson }} {{ true | tojson }} {{ 12345678901234 | tojson }}", {}),
    ("{{ s | upper }} {{ s | lower }} {{ s | title }} {{ s | capitalize }} {{ s | replace('o', '0') }} {{ s | first }} {{ s | last }}", {"s": "hello wOrld-foo"}),
    ("{{ u | default('dflt') }} {{ '' | default('e', true) }} {{ x | default('no') }} {{ 3.7 | int }} {{ -2 | abs }} {{ 5 | string ~ 'x' }} {{ [1,2] | list }} {{ 'ab' | list }}", {"x": 0}),
    ("{{ d | items | list }}", {"d": {"k": "v"}}),
    # methods
    ("[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ t.strip('xy') }}][{{ t.lstrip('x') }}][{{ t.rstrip('y') }}]", {"s": "  \n a b \t", "t": "xxyaxyy"}),
    ("{{ s.split('</think>')[-1].lstrip('\\n') }}|{{ s.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}|{{ s.split() }}|{{ s.split(none, 1) }}", {"s": "<think>\nr1 r2\n</think>\n\nanswer  here"}),
    ("{{ s.startswith('ab') }} {{ s.endswith('yz') }} {{ s.startswith(('x', 'a')) }} {{ s.upper() }} {{ s.title() }} {{ s.replace('b', 'B') }}", {"s": "abc xyz"}),
    ("{{ d.get('a') }} {{ d.get('z', 'dz') }} {{ d.get('z') }} {{ d.keys() | list }} {{ d.values() | list }}", {"d": {"a": 1, "b": 2}}),
    # macros, block set, map, indent, separators
    ("{% macro f(a, b='B', c=none) %}<{{ a }}|{{ b }}|{{ c }}|{{ top }}|{{ loopvar }}>{% endmacro %}{% set top = 'T' %}"
     "{% for loopvar in [1] %}{{ f(1) }}{{ f('x', c=3) }}{{ f(b=2, a=0) }}{% endfor %}", {}),
    ("{% macro render(item, depth=0) %}{% if item is mapping %}{% for k, v in item.items() %}{{ k }}:{{ render(v, depth + 1) }};{% endfor %}"
     "{% else %}{{ item }}@{{ depth }}{% endif %}{% endmacro %}{{ render({'a': {'b': 1, 'c': [2]}}) }}", {}),
    ("{% macro f() %}{% set x = 5 %}{{ x }}{% endmacro %}{% set x = 1 %}{{ f() }}{{ x }}{{ f() | length }}", {}),
    ("{% set x %}\n  hello {{ n }}\n{% endset %}[{{ x }}]{% set y -%}  a  {%- endset %}[{{ y }}]", {"n": 3}),
    ("{{ ms | map(attribute='role') | join(',') }} {{ ms | map(attribute='nope', default='d') | list }} {{ ['a', 'B'] | map('upper') | list }}"
     " {{ ms | map(attribute='tool_calls') | list | length }}", {"ms": MSGS}),
    ("{{ 'a\nb\n\nc' | indent }}|{{ 'a\nb\n' | indent(2, first=True) }}|{{ 'a\n\nb' | indent(width='>', blank=true) }}|{{ '{\n' | indent(4, true) }}|{{ '' | indent }}", {}),
    ("{{ x | tojson(separators=(',', ':')) }} {{ x | tojson(indent=2, separators=(',', ': ')) }}", {"x": {"a": [1, 2], "b": {"c": None}}}),
    # globals
    ("{% if x %}{{ raise_exception('bad ' ~ x) }}{% endif %}ok", {"x": 0}),
    ("{{ raise_exception('Conversation roles must alternate user/assistant') }}", {}),
    ("{{ strftime_now is defined }} {{ namespace is defined }} {{ dict(a=1, b='x') }}", {}),
    # errors jinja2 raises (Undefined semantics): mb must error too
    ("{{ u.x }}", {}),
    ("{{ u + 'x' }}", {}),
    ("{{ u['k'] }}", {}),
    ("{{ 'a' + 1 }}", {}),
    ("{{ 1 / 0 }}", {}),
    ("{% set x.y = 1 %}", {"x": {}}),
    ("{{ u | tojson }}", {}),
    ("{% for a, b in [1, 2] %}{% endfor %}", {}),
    ("{% macro f(a) %}{{ a }}{% endmacro %}{{ f(1, 2) }}", {}),
    ("{% macro f(a) %}{{ a }}{% endmacro %}{{ f(b=2) }}", {}),
    # found by a differential run of the fuzz corpus against jinja2
    ("s\x0c.d\x0b\x1c\x1d\x85\u2028 e\r\nf\rg\n", {}),
    ("{{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }} {{ 1e3 }} {{ 1_0.5_0 }} {{ 00 }} {{ 1.5e-3 }}", {}),
    ("{{ 03 }}", {}),
    ("{{ 'x\\\u0646\\\u00e9\\\U0001F600' }}", {}),
    ("{{ [1, 2] | reject('odd') | list }} {{ [1, 2] | select('odd') | first }} {{ 'yes' if [] | select else 'no' }}", {}),
    ("{{ [1, 2] | map('string') | length }}", {}),
    ("{{ 'ab' | indent(u) }}", {}),
    ("{{ x is defined if x else 'n' }}", {"x": 1}),
    ("{{ +u }}", {}),
    ("{{ +true }} {{ -false }} {{ +1.5 }}", {}),
    ("{% macro f(a, b=1) %}{{ a }}{{ b }}{% endmacro %}{{ f(1, a=2) }}", {}),
    ("{{ 'a' | trim(chars='a', x=1) }}", {}),
    ("{{ 'a b'.split(sep=' ') }} {{ 'a'.strip(chars='a') }}", {}),
    ("{{ x is defined(1) }}", {"x": 1}),
    ("{{ 'a\x00b' }}{{ '\x00' | length }}", {}),
    # syntax errors
    ("{% if x %}never closed", {}),
    ("{{ 1 + }}", {}),
    ("{% endfor %}", {}),
]

UNSUPPORTED = [  # (template, words mb's error must hold)
    ("{% macro f() %}[{{ caller() }}]{% endmacro %}\n{% call f() %}body{% endcall %}", ["call", ":2"]),
    ("line one\n{% filter upper %}x{% endfilter %}", ["filter", ":2"]),
    ("{{ 'x' | wordwrap(3) }}", ["wordwrap", ":1"]),
    ("\n\n{{ [3, 1] | sort | join }}", ["sort", ":3"]),
    ("{{ x is callable }}", ["callable", ":1"]),
    ("{{ 'x'.zfill(3) }}", ["zfill", ":1"]),
    ("{{ 'a %s' % 'b' }}", ["%", ":1"]),
    ("{% raw %}{{ x }}{% endraw %}", ["raw", ":1"]),
    ("{% set ns = namespace(a=1) %}{% set ns.a %}block{% endset %}", ["block set", ":1"]),
    ("{{ cycler(1, 2).next() }}", ["cycler", ":1"]),
    ("{% set d = {'a': 1} %}\n{{ d.items }}", ["items", "without a call", ":2"]),
    ("{{ '\u00e9a' | upper }}", ["upper", "non-ASCII", ":1"]),
    ("{% for x in [1, 2] %}{{ loop.cycle('a', 'b') }}{% endfor %}", ["cycle", ":1"]),
    ("{{ 2 ** 64 }}", ["outside 64 bits", ":1"]),
    ("\n{{ 9223372036854775807 + 1 }}", ["outside 64 bits", ":2"]),
    ("{{ 99999999999999999999 }}", ["outside 64 bits", ":1"]),
    ("{{ [1, 2] | select('odd') }}", ["printing a generator", ":1"]),
    ("{{ 'a<' | e | e }}", ["filter 'e'", ":1"]),
    ("{{ 'a' | safe ~ '<' }}", ["filter 'safe'", ":1"]),
]


def render_mb(path):
    p = subprocess.run(["chat_render", "jinja", path], capture_output=True, text=True, encoding="utf-8")
    if p.returncode not in (0, 1) or p.stderr:
        sys.exit(f"chat_render jinja failed ({p.returncode}): {p.stderr}")
    return p.stdout.split("\n")[:-1]


def suite(path):
    """Real templates: identical to jinja2, or refused (never a different string)."""
    cases = [json.loads(l) for l in open(path, encoding="utf-8")]
    got = render_mb(path)
    assert len(got) == len(cases)
    same = refused = bad = 0
    for c, line in zip(cases, got):
        want = _compile_jinja_template(c["template"]).render(**c["vars"])
        if line.startswith("error: "):
            refused += 1
            print(f"# refused: {c['name']}: {line[:200]}")
        elif json.loads(line) == want:
            same += 1
        else:
            bad += 1
            print(f"# DIFFERS: {c['name']}")
    print(f"suite: {same} of {len(cases)} templates rendered as jinja2, {refused} refused, {bad} differ")
    return 1 if bad else 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--suite":
        return suite(sys.argv[2])
    with open("jinja-cases.jsonl", "w", encoding="utf-8") as f:
        for t, v in CASES + [(t, {}) for t, _ in UNSUPPORTED]:
            f.write(json.dumps({"template": t, "vars": v}, ensure_ascii=False) + "\n")
    p = subprocess.run(["chat_render", "jinja", "jinja-cases.jsonl"], capture_output=True, text=True,
                       encoding="utf-8")
    if p.returncode not in (0, 1) or p.stderr:
        sys.exit(f"chat_render jinja failed ({p.returncode}): {p.stderr}")
    got = p.stdout.split("\n")[:-1]
    assert len(got) == len(CASES) + len(UNSUPPORTED), (len(got), p.stdout[-300:])
    bad = same = raised = 0
    for i, ((tmpl, vars), line) in enumerate(zip(CASES, got), 1):
        try:
            want, exc = _compile_jinja_template(tmpl).render(**vars), None
        except Exception as e:  # noqa: BLE001 - any jinja2 failure must be an mb error
            want, exc = None, e
        if exc is not None:
            ok = line.startswith("error: ")
            raised += ok
        else:
            ok = not line.startswith("error: ") and json.loads(line) == want
            same += ok
        if not ok:
            bad += 1
            print(f"# case {i} {tmpl!r}\n#   mb {line!r}\n#   jinja2 {want if exc is None else repr(exc)!r}")
    refused = 0
    for (tmpl, words), line in zip(UNSUPPORTED, got[len(CASES):]):
        _compile_jinja_template(tmpl).render()  # jinja2 renders it: outside mb's subset only
        if line.startswith("error: ") and all(w in line for w in words):
            refused += 1
        else:
            bad += 1
            print(f"# unsupported {tmpl!r}: mb {line!r}, wanted an error naming {words}")
    print(f"jinja: {same} cases rendered as jinja2, {raised} errors where jinja2 raises, "
          f"{refused} of {len(UNSUPPORTED)} unsupported constructs refused by name, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
