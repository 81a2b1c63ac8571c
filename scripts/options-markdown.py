#!/usr/bin/env python3
# Prints the README's option tables from `sluice --help`:
#   target/release/sluice --help | scripts/options-markdown.py
import sys,re
sec=None
out=[]
for line in sys.stdin:
    line=line.rstrip('\n')
    if line.endswith(':') and not line.startswith(' '):
        sec=line[:-1]; out.append('\n#### '+sec+'\n\n| option | default | meaning |\n|---|---|---|'); continue
    m=re.match(r'  --(\S+)\s+(.*)$',line)
    if m and sec:
        name,rest=m.groups()
        d=re.search(r' \[default: (.*)\]$',rest)
        default=d.group(1) if d else ''
        if d: rest=rest[:d.start()]
        esc=lambda x: x.replace('|','\\|')
        default='`'+esc(default)+'`' if default else '—'
        out.append('| `%s` | %s | %s |'%(name,default,esc(rest)))
print('\n'.join(out))
