#include "hv/ch_config.hpp"

#include "hv/option_escape.hpp"

namespace vmrt::hv::ch {

namespace {

constexpr std::uint64_t mib = 1ull << 20;
// CH's ACPI memory hotplug adds memory in 128 MiB blocks (§6).
constexpr std::uint64_t hotplug_block_mib = 128;

std::string at(const char* list, std::size_t i) { return std::string(list) + "[" + std::to_string(i) + "]"; }

std::optional<spec_error> check_disk(const disk_spec& d, const std::string& field) {
    if (d.interface == disk_interface::nvme)
        return spec_error{field + ".interface", "Cloud Hypervisor has no NVMe controller; use virtio-blk"};
    if (d.cache == disk_cache::writethrough || d.cache == disk_cache::unsafe)
        return spec_error{field + ".cache", "Cloud Hypervisor offers the host page cache (writeback) or "
                                            "O_DIRECT (none), not \"" +
                                                std::string(to_string(d.cache)) + "\""};
    return std::nullopt;
}

}  // namespace

std::string disk_id(std::size_t index) { return "disk" + std::to_string(index); }
std::string net_id(std::size_t index) { return "net" + std::to_string(index); }
std::string fs_id(std::size_t index) { return "fs" + std::to_string(index); }

std::optional<spec_error> check_spec_for_ch(const vm_spec& s, bool virtiofsd_read_only) {
    if (s.rosetta) return spec_error{"rosetta", "Rosetta exists only on Apple silicon (apple-vz backend)"};
    if (s.machine_id) return spec_error{"machine_id", "a machine identifier is an Apple VZ setting"};
    if (s.control_channel)
        return spec_error{"control_channel", "Cloud Hypervisor has no named virtio-serial ports; use "
                                             "\"vsock\" (hybrid vsock) for a host <-> guest stream"};
    if (s.boot == boot_mode::uefi && !s.firmware)
        return spec_error{"firmware", "Cloud Hypervisor has no default firmware: name one (CLOUDHV.fd or "
                                      "rust-hypervisor-firmware)"};
    if (s.efi_variable_store)
        return spec_error{"efi_variable_store", "Cloud Hypervisor's firmware keeps no EFI variable store"};
    if (s.max_memory_mib && *s.max_memory_mib != s.memory_mib &&
        (*s.max_memory_mib - s.memory_mib) % hotplug_block_mib != 0)
        return spec_error{"max_memory_mib", "Cloud Hypervisor hot-plugs memory in 128 MiB blocks: "
                                            "max_memory_mib - memory_mib must be a multiple of 128"};
    if (s.root_disk)
        if (auto e = check_disk(*s.root_disk, "root_disk")) return e;
    for (std::size_t i = 0; i < s.data_disks.size(); ++i)
        if (auto e = check_disk(s.data_disks[i], at("data_disks", i))) return e;
    for (std::size_t i = 0; i < s.networks.size(); ++i) {
        const auto& n = s.networks[i];
        if (!n.switch_network.empty() || n.kind == nic_kind::fd_dgram || n.kind == nic_kind::fd_stream)
            return spec_error{at("networks", i),
                              "Cloud Hypervisor's virtio-net needs a TAP device (or a vhost-user-net "
                              "backend); it cannot use a socket, so switch and fd NICs are QEMU/VZ only"};
        if (n.kind == nic_kind::user)
            return spec_error{at("networks", i), "Cloud Hypervisor has no user-mode (NAT) networking; use a "
                                                 "tap NIC"};
    }
    for (std::size_t i = 0; i < s.shared_dirs.size(); ++i)
        if (!s.shared_dirs[i].share_name.empty())
            return spec_error{at("shared_dirs", i) + ".share_name",
                              "Cloud Hypervisor's virtiofs device exports one directory per tag; give each "
                              "directory its own tag (several directories behind one tag need the "
                              "apple-vz backend)"};
    for (std::size_t i = 0; i < s.shared_dirs.size(); ++i)
        if (s.shared_dirs[i].read_only && !virtiofsd_read_only)
            return spec_error{at("shared_dirs", i) + ".read_only",
                              "the installed virtiofsd cannot export a directory read-only"};
    if (s.netns && s.networks.empty())
        return spec_error{"netns", "a netns is where the VM's TAP devices live; this VM has no NIC"};
    return std::nullopt;
}

vm_config make_vm_config(const vm_spec& s, const launch_resources& r) {
    vm_config c;
    c.cpus.boot_vcpus = s.cpus;
    if (s.max_cpus && *s.max_cpus != s.cpus) c.cpus.max_vcpus = *s.max_cpus;
    c.memory.size = s.memory_mib * mib;
    if (s.max_memory_mib && *s.max_memory_mib > s.memory_mib)
        c.memory.hotplug_size = (*s.max_memory_mib - s.memory_mib) * mib;
    if (!s.shared_dirs.empty()) c.memory.shared = true;  // vhost-user needs shared memory (§3 --fs)

    if (s.boot == boot_mode::uefi) {
        c.payload.firmware = s.firmware->string();
    } else {
        c.payload.kernel = s.kernel.string();
        if (s.initramfs) c.payload.initramfs = s.initramfs->string();
        // Serial is ttyS0 on CH's x86 machine; the root disk is the first virtio-blk device.
        c.payload.cmdline =
            s.cmdline.value_or(s.root_disk ? "console=ttyS0 root=/dev/vda rw" : "console=ttyS0");
    }

    auto add_disk = [&](const disk_spec& d, std::string id) {
        disk_config disk;
        disk.path = d.path.string();
        if (d.read_only) disk.readonly = true;
        if (d.cache == disk_cache::none) disk.direct = true;
        disk.id = std::move(id);
        c.disks.push_back(std::move(disk));
    };
    std::size_t disk_index = 0;
    if (s.root_disk) add_disk(*s.root_disk, disk_id(disk_index++));
    for (const auto& d : s.data_disks) add_disk(d, disk_id(disk_index++));
    if (s.seed_iso) {
        disk_spec seed{.path = *s.seed_iso, .read_only = true};
        add_disk(seed, "seed");
    }

    for (std::size_t i = 0; i < s.networks.size(); ++i) {
        net_config n;
        n.mac = s.networks[i].mac.value_or(default_mac(s.name, i)).to_string();
        n.id = net_id(i);
        if (i < r.tap_fds.size() && r.tap_fds[i] >= 0) {
            n.fds = {r.tap_fds[i]};
            n.num_queues = 2;  // one RX/TX pair per fd (§3 --net)
        } else {
            n.tap = s.networks[i].tap_name;
        }
        c.net.push_back(std::move(n));
    }
    for (std::size_t i = 0; i < s.shared_dirs.size(); ++i) {
        fs_config f;
        f.tag = s.shared_dirs[i].tag;
        f.socket = i < r.fs_sockets.size() ? r.fs_sockets[i].string() : std::string();
        f.id = fs_id(i);
        c.fs.push_back(std::move(f));
    }
    if (s.vsock)
        c.vsock = vsock_config{.cid = s.vsock->cid, .socket = s.vsock->socket.string(), .id = "vsock"};
    if (s.balloon) {
        balloon_config b;
        b.size = s.balloon->initial_mib * mib;
        b.deflate_on_oom = s.balloon->deflate_on_oom;
        b.free_page_reporting = s.balloon->free_page_reporting;
        c.balloon = b;
    }
    // The guest console goes to the serial log (readiness is read from it); virtio-console is
    // off so that CH never takes over vmrt's terminal (its default is tty, §3).
    c.serial = console_config{.mode = "File", .file = s.serial_log.string()};
    c.console = console_config{.mode = "Off"};
    return c;
}

std::string size_option(std::uint64_t bytes) {
    if (bytes != 0 && bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "G";
    if (bytes != 0 && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "M";
    if (bytes != 0 && bytes % (1ull << 10) == 0) return std::to_string(bytes >> 10) + "K";
    return std::to_string(bytes);
}

namespace {

// Builds one "key=value,key=value" option, escaping values; remembers the first bad value.
class option_builder {
public:
    explicit option_builder(std::optional<spec_error>& problem) : problem_(problem) {}
    option_builder& raw(const std::string& key, const std::string& value) {
        text_ += (text_.empty() ? "" : ",") + key + "=" + value;
        return *this;
    }
    option_builder& value(const std::string& key, const std::string& v, const std::string& field) {
        auto escaped = ch_option_value(v);
        if (!escaped) {
            if (!problem_)
                problem_ = spec_error{
                    field, ch_option_value_problem(v).value_or("cannot be given to Cloud Hypervisor")};
            return *this;
        }
        return raw(key, *escaped);
    }
    option_builder& flag(const std::string& key, bool on) { return raw(key, on ? "on" : "off"); }
    std::string str() const { return text_; }

private:
    std::string text_;
    std::optional<spec_error>& problem_;
};

std::string console_option(const console_config& c, option_builder&& b) {
    if (c.mode == "File" && c.file) return b.value("file", *c.file, "serial_log").str();
    if (c.mode == "Socket" && c.socket) return b.value("socket", *c.socket, "serial_log").str();
    std::string lower = c.mode;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return lower;
}

}  // namespace

boost::system::result<std::vector<std::string>, spec_error> command_line(const vm_config& c, int api_fd,
                                                                         int event_fd) {
    std::optional<spec_error> problem;
    std::vector<std::string> a;
    auto add = [&](std::string flag, std::string value) {
        a.push_back(std::move(flag));
        a.push_back(std::move(value));
    };
    if (api_fd >= 0) add("--api-socket", "fd=" + std::to_string(api_fd));
    if (event_fd >= 0) add("--event-monitor", "fd=" + std::to_string(event_fd));
    // Payload paths are whole argv entries, not key=value options: no escaping needed.
    if (c.payload.kernel) add("--kernel", *c.payload.kernel);
    if (c.payload.firmware) add("--firmware", *c.payload.firmware);
    if (c.payload.initramfs) add("--initramfs", *c.payload.initramfs);
    if (c.payload.cmdline) add("--cmdline", *c.payload.cmdline);

    option_builder cpus(problem);
    cpus.raw("boot", std::to_string(c.cpus.boot_vcpus));
    if (c.cpus.max_vcpus) cpus.raw("max", std::to_string(*c.cpus.max_vcpus));
    add("--cpus", cpus.str());

    option_builder mem(problem);
    mem.raw("size", size_option(c.memory.size));
    if (c.memory.shared) mem.flag("shared", *c.memory.shared);
    if (c.memory.hotplug_size) mem.raw("hotplug_size", size_option(*c.memory.hotplug_size));
    add("--memory", mem.str());

    for (std::size_t i = 0; i < c.disks.size(); ++i) {
        const auto& d = c.disks[i];
        option_builder o(problem);
        o.value("path", d.path, "disks[" + std::to_string(i) + "].path");
        if (d.readonly) o.flag("readonly", *d.readonly);
        if (d.direct) o.flag("direct", *d.direct);
        if (d.id) o.value("id", *d.id, "disks[" + std::to_string(i) + "]");
        add("--disk", o.str());
    }
    for (std::size_t i = 0; i < c.net.size(); ++i) {
        const auto& n = c.net[i];
        option_builder o(problem);
        const std::string field = "networks[" + std::to_string(i) + "]";
        if (!n.fds.empty()) {
            std::string list;
            for (int fd : n.fds) list += (list.empty() ? "" : ",") + std::to_string(fd);
            o.raw("fd", "[" + list + "]");  // brackets keep the commas inside one value (§3)
        } else if (n.tap) {
            o.value("tap", *n.tap, field + ".tap");
        }
        if (n.mac) o.raw("mac", *n.mac);
        if (n.num_queues) o.raw("num_queues", std::to_string(*n.num_queues));
        if (n.id) o.value("id", *n.id, field);
        add("--net", o.str());
    }
    for (std::size_t i = 0; i < c.fs.size(); ++i) {
        const auto& f = c.fs[i];
        option_builder o(problem);
        const std::string field = "shared_dirs[" + std::to_string(i) + "]";
        o.value("tag", f.tag, field + ".tag").value("socket", f.socket, field);
        o.raw("num_queues", std::to_string(f.num_queues)).raw("queue_size", std::to_string(f.queue_size));
        if (f.id) o.value("id", *f.id, field);
        add("--fs", o.str());
    }
    if (c.vsock) {
        option_builder o(problem);
        o.raw("cid", std::to_string(c.vsock->cid)).value("socket", c.vsock->socket, "vsock.socket");
        if (c.vsock->id) o.value("id", *c.vsock->id, "vsock");
        add("--vsock", o.str());
    }
    if (c.balloon) {
        option_builder o(problem);
        o.raw("size", size_option(c.balloon->size));
        if (c.balloon->deflate_on_oom) o.flag("deflate_on_oom", *c.balloon->deflate_on_oom);
        if (c.balloon->free_page_reporting) o.flag("free_page_reporting", *c.balloon->free_page_reporting);
        add("--balloon", o.str());
    }
    if (c.serial) add("--serial", console_option(*c.serial, option_builder(problem)));
    if (c.console) add("--console", console_option(*c.console, option_builder(problem)));
    if (problem) return *problem;
    return a;
}

}  // namespace vmrt::hv::ch
