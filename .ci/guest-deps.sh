#!/usr/bin/env bash
# guest-deps.sh installs what the VFIO guest test tier (go test ./vfio/ -run TestGuest)
# needs and caches the guest kernel parts outside the repository:
#   - QEMU 8.0 or later (the igb NIC; Debian 12 has 7.2): when qemu-system-x86_64 is absent
#     or older, qemu-system-x86 from Debian's bookworm-backports suite (10.0), adding the
#     suite to the apt sources when no source names it;
#   - Debian package busybox-static (when absent);
#   - from Debian's linux-image-6.1.*-amd64: the kernel as an uncompressed ELF vmlinux
#     (booted directly through PVH, about 3 s instead of 10 s) and the modules listed below.
# Cache: $VERINIC_GUEST_CACHE, else $XDG_CACHE_HOME/verinic/guest, else
# /var/cache/verinic/guest (root) or ~/.cache/verinic/guest. A second run with a complete
# cache does nothing. Needs root and apt-get for the installs; exits 0 when all is in place.
set -euo pipefail

cache="${VERINIC_GUEST_CACHE:-}"
if [[ -z "$cache" ]]; then
  if [[ -n "${XDG_CACHE_HOME:-}" ]]; then cache="$XDG_CACHE_HOME/verinic/guest"
  elif [[ $(id -u) == 0 ]]; then cache=/var/cache/verinic/guest
  else cache="$HOME/.cache/verinic/guest"; fi
fi
# Load order from each module's depends= (modinfo) in Debian's 6.1 kernel package; e1000e (no
# module dependencies in 6.1) gives the guest NIC its kernel driver, so that nicctl bind
# and unbind have a driver to take the device from and give it back to.
# igb (the 82576; depends on dca and i2c-algo-bit, both modules in 6.1) is Linux's own driver
# for the igb guest's NICs.
# virtio_blk (after virtio_ring, virtio, the two virtio PCI transport helpers and virtio_pci,
# all modules in 6.1) drives the raw output disk through which guest programs return files
# (guest.Config.Outputs). pktgen (a module, no dependencies) is the kernel's packet generator,
# Linux's side of the frames-per-second comparison on the igb guest.
modules=(irqbypass vfio_virqfd vfio vfio_iommu_type1 vfio-pci-core vfio-pci e1000e dca i2c-algo-bit igb
  virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk pktgen)

log() { echo "guest-deps: $*" >&2; }
need_root() {
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    log "cannot install $1: needs root and apt-get"; exit 3
  fi
}
apt_updated=
apt_update() { [[ -n "$apt_updated" ]] || { apt-get update -qq >&2; apt_updated=1; }; }

# QEMU: 8.0 or later, from bookworm-backports when the installed one is older or absent.
qemu_ok() {
  local v
  v=$(qemu-system-x86_64 --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
  [[ -n "$v" ]] && (( ${v% *} >= 8 ))
}
if ! qemu_ok; then
  need_root "QEMU 8.0 or later (have: $(qemu-system-x86_64 --version 2>/dev/null | head -1 || echo none))"
  codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
  if [[ "$codename" != bookworm ]]; then
    log "cannot install QEMU 8.0 or later: this is '$codename', not Debian 12 (bookworm) with bookworm-backports"; exit 3
  fi
  if ! grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    log "adding the bookworm-backports suite to /etc/apt/sources.list.d/bookworm-backports.sources"
    cat > /etc/apt/sources.list.d/bookworm-backports.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  apt_update
  log "installing qemu-system-x86 from bookworm-backports"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 >&2
  qemu_ok || { log "qemu-system-x86_64 is still older than 8.0 after the install: $(qemu-system-x86_64 --version | head -1)"; exit 4; }
  log "$(qemu-system-x86_64 --version | head -1)"
fi

missing=()
# The initramfs needs the static busybox (the dynamic one from package busybox would not run there).
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing+=(busybox-static)
command -v xz >/dev/null || missing+=(xz-utils)
if ((${#missing[@]})); then
  need_root "${missing[*]}"
  apt_update
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

cached=1
[[ -f "$cache/complete" && -f "$cache/vmlinux" ]] || cached=
for m in "${modules[@]}"; do [[ -f "$cache/modules/$m.ko" ]] || cached=; done
if [[ -n "$cached" ]]; then
  log "kernel parts cached in $cache ($(cat "$cache/complete"))"
  echo "$cache"; exit 0
fi

need_root "the guest kernel"
apt_update
# The newest linux-image-6.1.0-N-amd64 (not -cloud, not -rt: cloud lacks e1000e).
pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1)
[[ -n "$pkg" ]] || { log "no linux-image-6.1.0-*-amd64 package in the apt lists"; exit 4; }
work=$(mktemp -d); chmod 755 "$work"; trap 'rm -rf "$work"' EXIT
log "downloading $pkg"
(cd "$work" && apt-get download -qq "$pkg" >&2)
dpkg -x "$work"/*.deb "$work/root"
kver=${pkg#linux-image-}
vmlinuz="$work/root/boot/vmlinuz-$kver"
[[ -f "$vmlinuz" ]] || { log "no $vmlinuz in $pkg"; exit 4; }

# Extract the ELF vmlinux from the bzImage: find the compressed payload by its magic
# (the kernel's scripts/extract-vmlinux does the same), decompress, check for ELF.
extract() { # magic-as-printf-escapes decompressor...
  local magic=$1; shift
  local pos
  for pos in $(LC_ALL=C grep -obUaP "$magic" "$vmlinuz" | cut -d: -f1); do
    if tail -c +$((pos + 1)) "$vmlinuz" | "$@" > "$work/vmlinux" 2>/dev/null || [[ -s "$work/vmlinux" ]]; then
      if [[ $(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' ') == 7f454c46 ]]; then return 0; fi
    fi
  done
  return 1
}
extract '\xfd\x37\x7a\x58\x5a\x00' xz -dc ||
  extract '\x1f\x8b\x08' gzip -dc ||
  extract '\x28\xb5\x2f\xfd' zstd -dc ||
  { log "could not find a compressed ELF kernel inside $vmlinuz"; exit 4; }

stage="$cache.tmp.$$"
rm -rf "$stage"; mkdir -p "$stage/modules"
mv "$work/vmlinux" "$stage/vmlinux"
moddir="$work/root/lib/modules/$kver"
for m in "${modules[@]}"; do
  f=$(find "$moddir" -name "$m.ko*" | head -1)
  [[ -n "$f" ]] || { log "module $m not in $pkg"; exit 4; }
  case "$f" in
    *.ko.xz) xz -dc "$f" > "$stage/modules/$m.ko" ;;
    *.ko.zst) zstd -dc "$f" > "$stage/modules/$m.ko" ;;
    *) cp "$f" "$stage/modules/$m.ko" ;;
  esac
done
printf '%s\n' "${modules[@]}" > "$stage/modules/order"
echo "$pkg" > "$stage/complete"
mkdir -p "$(dirname "$cache")"
rm -rf "$cache"; mv "$stage" "$cache"
log "cached $pkg in $cache"
echo "$cache"
