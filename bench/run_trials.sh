#!/usr/bin/env bash
# Rebuild the real-document trial KBs from this machine's system docs and run every trial once.
#
#     bash bench/run_trials.sh WORKDIR [ragkit eval run options, e.g. --generator Qwen2.5-Coder-0.5B-Instruct]
#     ONLY="t18" bash bench/run_trials.sh WORKDIR     # one trial (or several, by name)
#     NOEVAL=1 bash bench/run_trials.sh WORKDIR       # build the KBs only (for bench/trial_recall.py KB=TRIAL)
#     SHARED=1 ONLY="t71 ... t112" [ASK="t107 ... t112"] bash bench/run_trials.sh WORKDIR
#         # one KB (WORKDIR/shared-kb) of every chosen trial's documents, as a user keeps many manuals, and each
#         # chosen trial (or those ASK names) asked of it; bench/multidoc_recall.py and bench/named_changed.py read it
#     RENDERED=1 SHARED=1 ONLY="t71 ... t130" ASK="t125 ... t130" bash bench/run_trials.sh WORKDIR
#         # the same, each manual page saved as a user saves it, `MANWIDTH=80 man -l ar.1.gz > ar.txt` (KB
#         # WORKDIR/shared-rendered-kb; bench/multidoc_recall.py --rendered reads it)
#
# Each trial's documents are Debian/Node files or folders (docs/devset.md lists them); a KB is built once per trial under
# WORKDIR (KB-kb) and reused. Then tally the runs with the hand labels, or replay today's checks on them:
#     python bench/trial_tally.py WORKDIR/*-kb/runs/*
#     python bench/trial_label.py WORKDIR/t36-kb/runs/NAME [ID=LABEL ...]   # read a run; add hand labels
#     python bench/replay_trials.py WORKDIR/*-kb/runs/*
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bash bench/run_trials.sh WORKDIR [eval run options]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
work=$1; shift
ragkit=${RAGKIT:-$root/.venv/bin/ragkit}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
D=/usr/share/doc N=/usr/share/doc/nodejs/api V=/usr/share/doc/valgrind/html
NPM=/usr/lib/node_modules/npm
P=/usr/share/perl/5.36.0 VIM=/usr/share/vim/vim90/doc
mkdir -p "$work" && cd "$work"

# name, trial file, then "source[:name in the KB]" for each document
trials=(
  "docs trial_docs /usr/share/common-licenses/Apache-2.0:apache-license.txt /usr/share/common-licenses/BSD:bsd-license.txt $D/libtasn1-doc/libtasn1.pdf"
  "manuals trial_manuals $D/bzip2/manual.html:bzip2-manual.html $D/bc/bc.html $D/base-passwd/users-and-groups.html"
  "heldout trial_heldout $D/ninja-build/manual.html:ninja-manual.html $D/zlib1g-dev/examples/zlib_how.html"
  "npm trial_npm $NPM/docs/content/commands/npm-ci.md $NPM/docs/content/configuring-npm/npmrc.md $NPM/docs/content/configuring-npm/package-lock-json.md $NPM/docs/content/using-npm/scripts.md $NPM/docs/content/using-npm/workspaces.md"
  "tools trial_tools $D/time/time.html $V/cg-manual.html $NPM/node_modules/semver/README.md:semver-README.md"
  "mp trial_massif_path $V/ms-manual.html $N/path.md"
  "mc trial_mime_corepack $D/shared-mime-info/shared-mime-info-spec.pdf $N/corepack.md"
  "pw trial_pypolicy_wasi $D/python3/python-policy.html $N/wasi.md"
  "ns trial_node_small $N/querystring.md $N/string_decoder.md $N/punycode.md"
  "t10 trial_font_drd $D/fontconfig/fontconfig-user.html $V/drd-manual.html"
  "t11 trial_nettle $D/nettle-dev/nettle.html"
  "t12 trial_dhat_timers $V/dh-manual.html $N/timers.md"
  "t13 trial_dgram_bbv $V/bbv-manual.html $N/dgram.md"
  "t14 trial_lackey_tty $V/lk-manual.html $N/tty.md"
  "t15 trial_console_intl $N/console.md $N/intl.md"
  "t16 trial_os_xslt $N/os.md $D/libxslt1-dev/html/internals.html:libxslt-internals.html"
  "t17 trial_cmake_presets /usr/share/cmake-3.25/Help/manual/cmake-presets.7.rst"
  "t18 trial_triggers_ffi $D/dpkg/spec/triggers.txt:dpkg-triggers.txt $D/libffi8/html/The-Basics.html $D/libffi8/html/Primitive-Types.html $D/libffi8/html/Structures.html $D/libffi8/html/Size-and-Alignment.html $D/libffi8/html/Multiple-ABIs.html $D/libffi8/html/The-Closure-API.html $D/libffi8/html/Memory-Usage.html $D/libffi8/html/Thread-Safety.html $D/libffi8/html/Missing-Features.html $D/libffi8/html/Introduction.html"
  "t19 trial_git_relnotes $D/git/RelNotes/2.36.0.txt:git-2.36.0-relnotes.txt"
  "t20 trial_faq_policies $V/faq.html:valgrind-faq.html /usr/share/cmake-3.25/Help/policy:cmake-policy"
  "t21 trial_pip_utillinux $D/python3-pip/html:pip-docs $D/util-linux:util-linux-docs"
  "t22 trial_info_manuals /usr/share/info/gzip.info.gz /usr/share/info/sed.info.gz /usr/share/info/wget.info.gz"
  "t23 trial_man_pages /usr/share/man/man1/tar.1.gz /usr/share/man/man1/grep.1.gz /usr/share/man/man1/make.1.gz"
  "t24 trial_perl_pod $P/Getopt/Long.pm:Getopt-Long.pm $P/pod/perldiag.pod $P/ExtUtils/MakeMaker/FAQ.pod:MakeMaker-FAQ.pod"
  "t26 trial_heldout_vim $VIM/undo.txt $VIM/fold.txt $VIM/recover.txt"
  "t27 trial_heldout_expat $D/libexpat1-dev/expat.html/reference.html"
  "t28 trial_heldout_ed /usr/share/info/ed.info.gz"
  "t29 trial_heldout_xargs /usr/share/man/man1/xargs.1.gz"
  "t30 trial_heldout_readline /usr/share/info/rluserman.info.gz"
  "t31 trial_zstd_man /usr/share/man/man1/zstd.1.gz"
  "t32 trial_heldout_jq /usr/share/man/man1/jq.1.gz"
  "t33 trial_heldout_unzip /usr/share/man/man1/unzip.1.gz"
  "t34 trial_heldout_less /usr/share/man/man1/less.1.gz"
  "t35 trial_heldout_zip /usr/share/man/man1/zip.1.gz"
  "t36 trial_heldout_mawk /usr/share/man/man1/mawk.1.gz"
  "t37 trial_heldout_diffutils /usr/share/info/diffutils.info.gz"
  "t38 trial_heldout_strace /usr/share/man/man1/strace.1.gz"
  "t39 trial_heldout_find /usr/share/man/man1/find.1.gz"
  "t40 trial_heldout_patch /usr/share/man/man1/patch.1.gz"
  "t41 trial_heldout_ps /usr/share/man/man1/ps.1.gz"
  "t42 trial_heldout_xz /usr/share/man/man1/xz.1.gz"
  "t43 trial_heldout_dpkg /usr/share/man/man1/dpkg.1.gz"
  "t44 trial_heldout_python /usr/share/man/man1/python3.11.1.gz"
  "t45 trial_heldout_gitcommit /usr/share/man/man1/git-commit.1.gz"
  "t46 trial_heldout_opensslreq /usr/share/man/man1/openssl-req.1ssl.gz"
  "t47 trial_heldout_initdb /usr/share/man/man1/initdb.1.gz"
  "t48 trial_heldout_findmnt /usr/share/man/man8/findmnt.8.gz"
  "t49 trial_heldout_coreutils /usr/share/man/man1/sort.1.gz /usr/share/man/man1/date.1.gz /usr/share/man/man1/du.1.gz"
  "t50 trial_heldout_sshconfig /usr/share/man/man5/ssh_config.5.gz"
  # the same page as a user saves it to read it without an mdoc reader: `man ssh_config > ssh_config.txt`
  "t50r trial_heldout_sshconfig rendered/ssh_config.txt"
  "t51 trial_heldout_objdump /usr/share/man/man1/objdump.1.gz"
  "t52 trial_heldout_nm /usr/share/man/man1/nm.1.gz"
  "t53 trial_heldout_readelf /usr/share/man/man1/readelf.1.gz"
  "t54 trial_heldout_dmesg /usr/share/man/man1/dmesg.1.gz"
  "t55 trial_heldout_mke2fs /usr/share/man/man8/mke2fs.8.gz"
  "t56 trial_heldout_ssh /usr/share/man/man1/ssh.1.gz"
  "t57 trial_heldout_aptget /usr/share/man/man8/apt-get.8.gz"
  "t58 trial_heldout_tune2fs /usr/share/man/man8/tune2fs.8.gz"
  "t59 trial_heldout_journalctl /usr/share/man/man1/journalctl.1.gz"
  "t60 trial_heldout_curl /usr/share/man/man1/curl.1.gz"
  "t61 trial_heldout_e2fsck /usr/share/man/man8/e2fsck.8.gz"
  "t62 trial_heldout_aptcache /usr/share/man/man8/apt-cache.8.gz"
  "t63 trial_heldout_useradd /usr/share/man/man8/useradd.8.gz"
  "t64 trial_heldout_dpkgquery /usr/share/man/man1/dpkg-query.1.gz"
  "t65 trial_heldout_lsblk /usr/share/man/man8/lsblk.8.gz"
  "t66 trial_heldout_pgdump /usr/share/postgresql/15/man/man1/pg_dump.1.gz"
  "t67 trial_heldout_ss /usr/share/man/man8/ss.8.gz"
  "t68 trial_heldout_usermod /usr/share/man/man8/usermod.8.gz"
  "t69 trial_heldout_pgrestore /usr/share/postgresql/15/man/man1/pg_restore.1.gz"
  "t70 trial_heldout_file /usr/share/man/man1/file.1.gz"
  "t71 trial_heldout_sshkeygen /usr/share/man/man1/ssh-keygen.1.gz"
  "t72 trial_heldout_losetup /usr/share/man/man8/losetup.8.gz"
  "t73 trial_heldout_pgctl /usr/share/postgresql/15/man/man1/pg_ctl.1.gz"
  "t74 trial_heldout_xxd /usr/share/man/man1/xxd.1.gz"
  "t75 trial_heldout_unshare /usr/share/man/man1/unshare.1.gz"
  "t76 trial_heldout_blkid /usr/share/man/man8/blkid.8.gz"
  "t77 trial_heldout_gitclone /usr/share/man/man1/git-clone.1.gz"
  "t78 trial_heldout_chage /usr/share/man/man1/chage.1.gz"
  "t79 trial_heldout_sshadd /usr/share/man/man1/ssh-add.1.gz"
  "t80 trial_heldout_pgbasebackup /usr/share/postgresql/15/man/man1/pg_basebackup.1.gz"
  "t81 trial_heldout_flock /usr/share/man/man1/flock.1.gz"
  "t82 trial_heldout_gitpush /usr/share/man/man1/git-push.1.gz"
  "t83 trial_heldout_scp /usr/share/man/man1/scp.1.gz"
  "t84 trial_heldout_ls /usr/share/man/man1/ls.1.gz"
  "t85 trial_heldout_column /usr/share/man/man1/column.1.gz"
  "t86 trial_heldout_fallocate /usr/share/man/man1/fallocate.1.gz"
  "t87 trial_heldout_cp /usr/share/man/man1/cp.1.gz"
  "t88 trial_heldout_nsenter /usr/share/man/man1/nsenter.1.gz"
  "t89 trial_heldout_script /usr/share/man/man1/script.1.gz"
  "t90 trial_heldout_wipefs /usr/share/man/man8/wipefs.8.gz"
  "t91 trial_heldout_dd /usr/share/man/man1/dd.1.gz"
  "t92 trial_heldout_swapon /usr/share/man/man8/swapon.8.gz"
  "t93 trial_heldout_install /usr/share/man/man1/install.1.gz"
  "t94 trial_heldout_split /usr/share/man/man1/split.1.gz"
  "t95 trial_heldout_tar /usr/share/man/man1/tar.1.gz"
  "t96 trial_heldout_gzip /usr/share/man/man1/gzip.1.gz"
  "t97 trial_heldout_sftp /usr/share/man/man1/sftp.1.gz"
  "t98 trial_heldout_gitstash /usr/share/man/man1/git-stash.1.gz"
  "t99 trial_heldout_mkswap /usr/share/man/man8/mkswap.8.gz"
  "t100 trial_heldout_zstd /usr/share/man/man1/zstd.1.gz"
  "t101 trial_heldout_bzip2 /usr/share/man/man1/bzip2.1.gz"
  "t102 trial_heldout_lz4 /usr/share/man/man1/lz4.1.gz"
  "t103 trial_heldout_gitworktree /usr/share/man/man1/git-worktree.1.gz"
  "t104 trial_heldout_sshagent /usr/share/man/man1/ssh-agent.1.gz"
  "t105 trial_heldout_hexdump /usr/share/man/man1/hexdump.1.gz"
  "t106 trial_heldout_pgdumpall /usr/share/postgresql/15/man/man1/pg_dumpall.1.gz"
  "t107 trial_heldout_gitcherrypick /usr/share/man/man1/git-cherry-pick.1.gz"
  "t108 trial_heldout_pgreceivewal /usr/share/postgresql/15/man/man1/pg_receivewal.1.gz"
  "t109 trial_heldout_umount /usr/share/man/man8/umount.8.gz"
  "t110 trial_heldout_logger /usr/share/man/man1/logger.1.gz"
  "t111 trial_heldout_chattr /usr/share/man/man1/chattr.1.gz"
  "t112 trial_heldout_dpkgdeb /usr/share/man/man1/dpkg-deb.1.gz"
  "t113 trial_heldout_gittag /usr/share/man/man1/git-tag.1.gz"
  "t114 trial_heldout_vacuumdb /usr/share/postgresql/15/man/man1/vacuumdb.1.gz"
  "t115 trial_heldout_pgrep /usr/share/man/man1/pgrep.1.gz"
  "t116 trial_heldout_gitswitch /usr/share/man/man1/git-switch.1.gz"
  "t117 trial_heldout_lscpu /usr/share/man/man1/lscpu.1.gz"
  "t118 trial_heldout_opensslx509 /usr/share/man/man1/openssl-x509.1ssl.gz"
  "t119 trial_heldout_gitbranch /usr/share/man/man1/git-branch.1.gz"
  "t120 trial_heldout_opensslenc /usr/share/man/man1/openssl-enc.1ssl.gz"
  "t121 trial_heldout_ar /usr/share/man/man1/ar.1.gz"
  "t122 trial_heldout_systemdrun /usr/share/man/man1/systemd-run.1.gz"
  "t123 trial_heldout_updatealternatives /usr/share/man/man1/update-alternatives.1.gz"
  "t124 trial_heldout_gprof /usr/share/man/man1/gprof.1.gz"
  "t125 trial_heldout_gitreset /usr/share/man/man1/git-reset.1.gz"
  "t126 trial_heldout_openssldgst /usr/share/man/man1/openssl-dgst.1ssl.gz"
  "t127 trial_heldout_strip /usr/share/man/man1/strip.1.gz"
  "t128 trial_heldout_sed /usr/share/man/man1/sed.1.gz"
  "t129 trial_heldout_loginctl /usr/share/man/man1/loginctl.1.gz"
  "t130 trial_heldout_createdb /usr/share/postgresql/15/man/man1/createdb.1.gz"
  "t131 trial_heldout_gitbisect /usr/share/man/man1/git-bisect.1.gz"
  "t132 trial_heldout_opensslsclient /usr/share/man/man1/openssl-s_client.1ssl.gz"
  "t133 trial_heldout_stat /usr/share/man/man1/stat.1.gz"
  "t134 trial_heldout_gitremote /usr/share/man/man1/git-remote.1.gz"
  "t135 trial_heldout_createuser /usr/share/postgresql/15/man/man1/createuser.1.gz"
  "t136 trial_heldout_ionice /usr/share/man/man1/ionice.1.gz"
  "t137 trial_heldout_gitclean /usr/share/man/man1/git-clean.1.gz"
  "t138 trial_heldout_opensslverify /usr/share/man/man1/openssl-verify.1ssl.gz"
  "t139 trial_heldout_fsck /usr/share/man/man8/fsck.8.gz"
  "t140 trial_heldout_timeout /usr/share/man/man1/timeout.1.gz"
  "t141 trial_heldout_pgisready /usr/share/postgresql/15/man/man1/pg_isready.1.gz"
  "t142 trial_heldout_gitfetch /usr/share/man/man1/git-fetch.1.gz"
  "t143 trial_heldout_tail /usr/share/man/man1/tail.1.gz"
  "t144 trial_heldout_ln /usr/share/man/man1/ln.1.gz"
  "t145 trial_heldout_gitrevert /usr/share/man/man1/git-revert.1.gz"
  "t146 trial_heldout_opensslgenpkey /usr/share/man/man1/openssl-genpkey.1ssl.gz"
  "t147 trial_heldout_reindexdb /usr/share/postgresql/15/man/man1/reindexdb.1.gz"
  "t148 trial_heldout_taskset /usr/share/man/man1/taskset.1.gz"
  "t25 trial_deb_copyright $D/zlib1g/copyright:zlib1g/copyright $D/libxml2/copyright:libxml2/copyright $D/libsqlite3-0/copyright:libsqlite3-0/copyright $D/libexpat1/copyright:libexpat1/copyright $D/libyaml-0-2/copyright:libyaml-0-2/copyright $D/libzstd1/copyright:libzstd1/copyright $D/libssl3/copyright:libssl3/copyright $D/libbz2-1.0/copyright:libbz2-1.0/copyright $D/libpcre2-8-0/copyright:libpcre2-8-0/copyright"
)
if [[ -z "${ONLY:-}" || " $ONLY " == *" t50r "* ]] && [ ! -d t50r-kb ] && command -v man > /dev/null; then
  mkdir -p rendered && MANWIDTH=80 man ssh_config > rendered/ssh_config.txt 2> /dev/null || rm -f rendered/ssh_config.txt
fi
evaluate() {  # trial name, question file, KB, then the eval run options
  local name=$1 trial=$2 kb=$3; shift 3
  if "$ragkit" eval run "$root/bench/data/$trial.jsonl" --kb "$kb" "$@" --json > "$name-eval.json"; then
    echo "run_trials: $name done $(date +%T)"
  else
    echo "run_trials: $name failed (see $work/$name-eval.json)" >&2
  fi
}
asked=()
for line in "${trials[@]}"; do
  read -r name trial docs <<<"$line"
  # ONLY="t17 t18" runs those trials alone
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
  into=$name; [ -n "${SHARED:-}" ] && into=shared
  [ -n "${RENDERED:-}" ] && into=$into-rendered
  if [ ! -d "$into-kb" ]; then
    mkdir -p "$into"
    for doc in $docs; do
      src=${doc%%:*}; dest=${doc#*:}; [ "$dest" = "$doc" ] && dest=$(basename "$src")
      if [ ! -e "$src" ]; then echo "run_trials: $src is missing; skipping trial $name" >&2; continue 2; fi
      mkdir -p "$(dirname "$into/$dest")"  # "zlib1g/copyright": a package's file in its package's folder
      if [ -n "${RENDERED:-}" ] && [[ "$dest" =~ \.[0-9][a-z]*\.gz$ ]]; then
        MANWIDTH=80 man -l "$src" > "$into/${dest%.*.gz}.txt" 2> /dev/null  # "ar.1.gz" -> "ar.txt", as man prints it
        continue
      fi
      cp -r "$src" "$into/$dest"  # a folder (CMake's policy pages) is copied whole
    done
    if [ -n "${SHARED:-}" ]; then asked+=("$name $trial"); continue; fi  # ingested once, after the loop
    # exit code 3: some files were skipped (each with its reason in the JSON), the rest ingested
    rc=0; "$ragkit" ingest "$into" --kb "$into-kb" --json > "$into-ingest.json" || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then echo "run_trials: ingest of $name failed" >&2; continue; fi
  fi
  [ -n "${SHARED:-}" ] && { asked+=("$name $trial"); continue; }
  [ -n "${NOEVAL:-}" ] && continue
  evaluate "$name" "$trial" "$into-kb" "$@"
done
if [ -n "${SHARED:-}" ] && [ "${#asked[@]}" -gt 0 ]; then
  shared=shared${RENDERED:+-rendered}
  if [ ! -d "$shared-kb" ]; then
    rc=0; "$ragkit" ingest "$shared" --kb "$shared-kb" --json > "$shared-ingest.json" || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then echo "run_trials: ingest of the shared KB failed" >&2; exit 1; fi
  fi
  [ -n "${NOEVAL:-}" ] && exit 0
  for pair in "${asked[@]}"; do
    read -r name trial <<<"$pair"
    if [ -n "${ASK:-}" ] && [[ " $ASK " != *" $name "* ]]; then continue; fi
    evaluate "$name" "$trial" "$shared-kb" "$@"
  done
fi
