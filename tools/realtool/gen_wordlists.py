#!/usr/bin/env python3
"""Write the small, deterministic word lists in wordlists/ (run once; the
output is committed). The fast scanners' lists are slices of Debian's dirb
lists, cut at record time by record.sh."""
import random
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wordlists")
os.makedirs(OUT, exist_ok=True)
rnd = random.Random(20261204)

def write(name, lines):
    with open(os.path.join(OUT, name), "w") as f:
        f.write("\n".join(lines) + "\n")

# Passwords: wfuzz's common_pass.txt, then names with common suffixes.
common = [l.strip() for l in open("/usr/share/wfuzz/wordlist/others/common_pass.txt") if l.strip()]
names = [l.strip().lower() for l in open("/usr/share/wfuzz/wordlist/others/names.txt") if l.strip()]
pw = list(dict.fromkeys(common))
for n in rnd.sample(names, 400):
    pw.append(n + rnd.choice(["", "1", "123", "2024", "2025", "!", "01"]))
pw = list(dict.fromkeys(pw))
write("passwords.txt", pw[:400])          # fast stuffer
write("passwords_slow.txt", pw[150:390])  # slow stuffer, 240

# Exploit probes of the kind internet-wide scanners send.
exploits = """/.env /.env.bak /.env.local /.env.production /.git/config /.git/HEAD /.svn/entries
/.DS_Store /.aws/credentials /.htpasswd /wp-login.php /wp-admin/ /wp-config.php.bak
/wp-content/plugins/revslider/readme.txt /xmlrpc.php /phpmyadmin/ /pma/ /myadmin/
/phpMyAdmin/index.php /adminer.php /cgi-bin/luci /cgi-bin/test.cgi /cgi-bin/.%2e/.%2e/bin/sh
/actuator/env /actuator/health /actuator/heapdump /jolokia/list /server-status /console/
/manager/html /solr/admin/info/system /api/jsonws/invoke /vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php
/index.php?s=/Index/\\think\\app/invokefunction /boaform/admin/formLogin /HNAP1/ /owa/auth/logon.aspx
/remote/fgt_lang?lang=/../../../..//////////dev/cmdb/sslvpn_websession /global-protect/login.esp
/druid/index.html /.vscode/sftp.json /config.json /backup.zip /db.sql /dump.sql /info.php /phpinfo.php
/shell.php /admin/config.php /login.action /struts2-showcase/ /Autodiscover/Autodiscover.xml
/telescope/requests /_ignition/execute-solution /debug/default/view /storage/logs/laravel.log
/.well-known/security.txt.bak /sftp-config.json /docker-compose.yml /server.key /id_rsa""".split()
write("exploits.txt", exploits)

# Distributed scan: 20 addresses in one /24, 9 different probes each,
# interleaved round-robin (pitchfork pairs: line i of both files).
ips = [f"45.95.147.{h}" for h in rnd.sample(range(2, 250), 20)]
plan = {ip: rnd.sample(exploits, 9) for ip in ips}
pairs = [(ip, plan[ip][k]) for k in range(9) for ip in ips]
write("subnet_scan_ips.txt", [ip for ip, _ in pairs])
write("subnet_scan_paths.txt", [p.lstrip("/") for _, p in pairs])

# IPv6 rotator: one /48, a new /64 for every request.
subnets = rnd.sample(range(1, 0xffff), 600)
write("ipv6_rotator_ips.txt", [f"2001:db8:bad:{s:x}::{rnd.randint(1, 0xffff):x}" for s in subnets])
