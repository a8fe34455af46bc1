// Writing a vm_spec as JSON: the inverse of parse_spec_json (vm_spec_json.cpp), indented for
// people to read. Every set field is written, defaults included.
#include "hex_text.hpp"

#include <vmrt/vm_spec.hpp>

#include <boost/json.hpp>

#include <iterator>
#include <string>

namespace vmrt {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

json::value path_value(const fs::path& p) { return json::value(json::string_view(p.native())); }

json::object disk_to_json(const disk_spec& disk) {
    return json::object{{"path", path_value(disk.path)},
                        {"read_only", disk.read_only},
                        {"cache", json::string_view(to_string(disk.cache))},
                        {"interface", json::string_view(to_string(disk.interface))}};
}

json::object nic_to_json(const nic_spec& nic) {
    json::object out{{"kind", json::string_view(to_string(nic.kind))}};
    // fd NICs are written so that a dump shows them, even though parsing rejects them.
    if (nic.kind == nic_kind::tap)
        out["tap"] = json::string_view(nic.tap_name);
    else if (nic.kind == nic_kind::user)
        out["isolated"] = nic.isolated;
    else if (!nic.switch_network.empty())
        out["switch"] = json::string_view(nic.switch_network);
    else
        out["fd"] = nic.fd;
    if (nic.mac) out["mac"] = json::string_view(nic.mac->to_string());
    return out;
}

json::object spec_to_object(const vm_spec& spec) {
    json::object o;
    o["name"] = json::string_view(spec.name);
    o["namespace"] = json::string_view(spec.namespace_);
    o["backend"] = json::string_view(to_string(spec.backend));
    o["boot"] = json::string_view(to_string(spec.boot));
    if (!spec.kernel.empty()) o["kernel"] = path_value(spec.kernel);
    if (spec.initramfs) o["initramfs"] = path_value(*spec.initramfs);
    if (spec.cmdline) o["cmdline"] = json::string_view(*spec.cmdline);
    if (spec.firmware) o["firmware"] = path_value(*spec.firmware);
    if (spec.efi_variable_store) o["efi_variable_store"] = path_value(*spec.efi_variable_store);
    o["cpus"] = spec.cpus;
    if (spec.max_cpus) o["max_cpus"] = *spec.max_cpus;
    if (spec.max_memory_mib) o["max_memory_mib"] = *spec.max_memory_mib;
    o["memory_mib"] = spec.memory_mib;
    if (spec.balloon)
        o["balloon"] = json::object{{"initial_mib", spec.balloon->initial_mib},
                                    {"deflate_on_oom", spec.balloon->deflate_on_oom},
                                    {"free_page_reporting", spec.balloon->free_page_reporting}};
    if (spec.root_disk) o["root_disk"] = disk_to_json(*spec.root_disk);
    if (!spec.data_disks.empty()) {
        json::array disks;
        for (const auto& disk : spec.data_disks) disks.push_back(disk_to_json(disk));
        o["data_disks"] = std::move(disks);
    }
    if (spec.seed_iso) o["seed_iso"] = path_value(*spec.seed_iso);
    if (!spec.networks.empty()) {
        json::array nics;
        for (const auto& nic : spec.networks) nics.push_back(nic_to_json(nic));
        o["networks"] = std::move(nics);
    }
    if (!spec.shared_dirs.empty()) {
        json::array dirs;
        for (const auto& dir : spec.shared_dirs) {
            json::object d{{"host_path", path_value(dir.host_path)},
                           {"tag", json::string_view(dir.tag)},
                           {"read_only", dir.read_only}};
            if (!dir.share_name.empty()) d["share_name"] = json::string_view(dir.share_name);
            dirs.push_back(std::move(d));
        }
        o["shared_dirs"] = std::move(dirs);
    }
    if (spec.vsock) {
        json::object vsock{{"cid", spec.vsock->cid}};
        if (!spec.vsock->socket.empty()) vsock["socket"] = path_value(spec.vsock->socket);
        o["vsock"] = std::move(vsock);
    }
    if (!spec.serial_log.empty()) o["serial_log"] = path_value(spec.serial_log);
    if (spec.netns) o["netns"] = json::string_view(*spec.netns);
    if (spec.machine_id) o["machine_id"] = json::string_view(detail::hex_string(*spec.machine_id));
    o["rosetta"] = spec.rosetta;
    o["control_channel"] = spec.control_channel;
    return o;
}

// Boost.JSON only writes compact JSON; spec files are read by people, so indent them.
void write_pretty(const json::value& v, std::string& out, std::size_t indent) {
    const std::string inner(indent + 2, ' ');
    if (const auto* obj = v.if_object(); obj && !obj->empty()) {
        out += "{\n";
        for (auto it = obj->begin(); it != obj->end(); ++it) {
            out += inner + json::serialize(json::value(it->key())) + ": ";
            write_pretty(it->value(), out, indent + 2);
            out += std::next(it) == obj->end() ? "\n" : ",\n";
        }
        out += std::string(indent, ' ') + "}";
    } else if (const auto* arr = v.if_array(); arr && !arr->empty()) {
        out += "[\n";
        for (std::size_t i = 0; i < arr->size(); ++i) {
            out += inner;
            write_pretty((*arr)[i], out, indent + 2);
            out += i + 1 == arr->size() ? "\n" : ",\n";
        }
        out += std::string(indent, ' ') + "]";
    } else {
        out += json::serialize(v);
    }
}

}  // namespace

std::string spec_to_json(const vm_spec& spec) {
    std::string out;
    write_pretty(spec_to_object(spec), out, 0);
    out += '\n';
    return out;
}

}  // namespace vmrt
