// A simulated accelerator for CPU-only PyTorch builds (test support only).
//
// Registers a PrivateUse1 backend whose "device memory" is ordinary host
// memory, plus a pinned host allocator, so that code written for CUDA-style
// device/host round trips (`p.data = p.data.to(dev)`, pinned staging buffers,
// `copy_` back to the host) can be exercised on a machine without a GPU.
//
// Modelled on PyTorch's test/cpp_extensions/open_registration_extension
// (OpenRegMinimal.cpp and friends), reduced to what the loaderspec test suites
// need.  Built by kit/loaderspec/support/simulated_device.py with a single g++ call; it
// links against libc10/libtorch_cpu only and needs no Python symbols.
//
// What it provides:
//   * device allocator: host memory tagged with Device(PrivateUse1, 0);
//   * pinned host allocator: host memory whose ranges are kept in a registry
//     consulted by the hooks' isPinnedPtr, so `torch.empty(..., pin_memory=True)`
//     yields `.is_pinned() == True` while plain CPU tensors report False;
//   * a no-op device guard (one device, one default stream, no-op events);
//   * native kernels for factories, view ops, copies, resize_, set_,
//     _local_scalar_dense and _has_compatible_shallow_copy_type (so that
//     `param.data = device_tensor` is allowed); every other op runs on the
//     CPU through at::native::cpu_fallback.

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/core/impl/alloc_cpu.h>

#include <ATen/EmptyTensor.h>
#include <ATen/detail/PrivateUse1HooksInterface.h>
#include <ATen/native/CPUFallback.h>
#include <ATen/native/Resize.h>
#include <ATen/ops/_local_scalar_dense_native.h>
#include <ATen/ops/_reshape_alias_native.h>
#include <ATen/ops/as_strided_native.h>
#include <ATen/ops/copy_native.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/set_native.h>
#include <ATen/ops/unfold_native.h>
#include <ATen/ops/view_as_complex_native.h>
#include <ATen/ops/view_as_real_native.h>
#include <ATen/ops/view_native.h>

#include <torch/library.h>

namespace loaderspec_sim {
namespace {

constexpr c10::DeviceType kSimType = c10::DeviceType::PrivateUse1;
constexpr c10::DeviceIndex kSimCount = 1;

c10::Device sim_device() {
  return c10::Device(kSimType, 0);
}

void check_index(c10::DeviceIndex index) {
  TORCH_CHECK(
      index >= -1 && index < kSimCount,
      "simulated device: invalid device index ",
      static_cast<int>(index),
      " (only index 0 exists)");
}

// ---------------------------------------------------------------------------
// Allocators
// ---------------------------------------------------------------------------

void sim_free(void* ptr) {
  c10::free_cpu(ptr);
}

// "Device" memory: host memory tagged with the PrivateUse1 device.
struct SimDeviceAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t nbytes) override {
    void* ptr = nbytes == 0 ? nullptr : c10::alloc_cpu(nbytes);
    return {ptr, ptr, &sim_free, sim_device()};
  }
  c10::DeleterFnPtr raw_deleter() const override {
    return &sim_free;
  }
  void copy_data(void* dest, const void* src, std::size_t count)
      const override {
    if (count != 0) {
      std::memcpy(dest, src, count);
    }
  }
};

SimDeviceAllocator g_device_allocator;
REGISTER_ALLOCATOR(kSimType, &g_device_allocator);

// Registry of live pinned allocations: base address -> size in bytes.
std::mutex g_pinned_mutex;
std::map<const char*, size_t> g_pinned;

void pinned_free(void* ptr) {
  if (ptr != nullptr) {
    std::lock_guard<std::mutex> lock(g_pinned_mutex);
    g_pinned.erase(static_cast<const char*>(ptr));
  }
  c10::free_cpu(ptr);
}

bool is_pinned_ptr(const void* data) {
  if (data == nullptr) {
    return false;
  }
  const auto* p = static_cast<const char*>(data);
  std::lock_guard<std::mutex> lock(g_pinned_mutex);
  auto it = g_pinned.upper_bound(p);
  if (it == g_pinned.begin()) {
    return false;
  }
  --it;
  return p < it->first + it->second;
}

// "Pinned" host memory: ordinary host memory that the hooks recognise.
// Zero-byte requests return a null pointer, as CUDA's host allocator does,
// so (as on CUDA) a zero-element pinned tensor reports is_pinned() == False.
struct SimPinnedAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t nbytes) override {
    if (nbytes == 0) {
      return {nullptr, nullptr, &pinned_free, c10::Device(c10::kCPU)};
    }
    void* ptr = c10::alloc_cpu(nbytes);
    {
      std::lock_guard<std::mutex> lock(g_pinned_mutex);
      g_pinned[static_cast<const char*>(ptr)] = nbytes;
    }
    return {ptr, ptr, &pinned_free, c10::Device(c10::kCPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override {
    return &pinned_free;
  }
  void copy_data(void* dest, const void* src, std::size_t count)
      const override {
    if (count != 0) {
      std::memcpy(dest, src, count);
    }
  }
};

SimPinnedAllocator g_pinned_allocator;

// ---------------------------------------------------------------------------
// Hooks (availability, pinned memory, device count)
// ---------------------------------------------------------------------------

struct SimHooks final : at::PrivateUse1HooksInterface {
  void init() const override {}
  bool isBuilt() const override {
    return true;
  }
  bool isAvailable() const override {
    return true;
  }
  bool hasPrimaryContext(c10::DeviceIndex /*device_index*/) const override {
    return true;
  }
  c10::DeviceIndex deviceCount() const override {
    return kSimCount;
  }
  void setCurrentDevice(c10::DeviceIndex device) const override {
    check_index(device);
  }
  c10::DeviceIndex getCurrentDevice() const override {
    return 0;
  }
  c10::DeviceIndex exchangeDevice(c10::DeviceIndex device) const override {
    check_index(device);
    return 0;
  }
  c10::DeviceIndex maybeExchangeDevice(
      c10::DeviceIndex /*device*/) const override {
    return 0;
  }
  at::Allocator* getPinnedMemoryAllocator() const override {
    return &g_pinned_allocator;
  }
  bool isPinnedPtr(const void* data) const override {
    return is_pinned_ptr(data);
  }
  at::Device getDeviceFromPtr(void* /*data*/) const override {
    return sim_device();
  }
  void resizePrivateUse1Bytes(const c10::Storage& storage, size_t newsize)
      const override {
    auto* impl = storage.unsafeGetStorageImpl();
    TORCH_CHECK(impl->resizable(), "simulated device: storage is not resizable");
    c10::DataPtr fresh = g_device_allocator.allocate(newsize);
    const size_t ncopy = std::min(newsize, impl->nbytes());
    if (ncopy != 0) {
      std::memcpy(fresh.get(), impl->data(), ncopy);
    }
    impl->set_data_ptr_noswap(std::move(fresh));
    impl->set_nbytes(newsize);
  }
};

const bool g_hooks_registered [[maybe_unused]] = [] {
  at::RegisterPrivateUse1HooksInterface(new SimHooks());
  return true;
}();

// ---------------------------------------------------------------------------
// Device guard: one device, one stream, synchronous; events are no-ops.
// ---------------------------------------------------------------------------

struct SimGuardImpl final : c10::impl::DeviceGuardImplInterface {
  c10::DeviceType type() const override {
    return kSimType;
  }
  c10::Device exchangeDevice(c10::Device d) const override {
    check_index(d.index());
    return sim_device();
  }
  c10::Device getDevice() const override {
    return sim_device();
  }
  void setDevice(c10::Device d) const override {
    check_index(d.index());
  }
  void uncheckedSetDevice(c10::Device /*d*/) const noexcept override {}
  c10::Stream getStream(c10::Device /*d*/) const override {
    return default_stream();
  }
  c10::Stream getDefaultStream(c10::Device /*d*/) const override {
    return default_stream();
  }
  c10::Stream getStreamFromGlobalPool(c10::Device /*d*/, bool /*high*/)
      const override {
    return default_stream();
  }
  c10::Stream getNewStream(c10::Device /*d*/, int /*priority*/)
      const override {
    return default_stream();
  }
  c10::Stream exchangeStream(c10::Stream /*s*/) const override {
    return default_stream();
  }
  c10::DeviceIndex deviceCount() const noexcept override {
    return kSimCount;
  }
  void destroyEvent(void* /*event*/, const c10::DeviceIndex /*index*/)
      const noexcept override {}
  void record(
      void** event,
      const c10::Stream& /*stream*/,
      const c10::DeviceIndex /*index*/,
      const c10::EventFlag /*flag*/) const override {
    // Events carry no state: all work is synchronous.  Any non-null handle
    // marks the event as created; destroyEvent ignores it.
    static char token;
    if (event != nullptr && *event == nullptr) {
      *event = &token;
    }
  }
  void block(void* /*event*/, const c10::Stream& /*stream*/) const override {}
  bool queryEvent(void* /*event*/) const override {
    return true;
  }
  bool queryStream(const c10::Stream& /*stream*/) const override {
    return true;
  }
  void synchronizeStream(const c10::Stream& /*stream*/) const override {}
  void synchronizeEvent(void* /*event*/) const override {}
  void synchronizeDevice(const c10::DeviceIndex /*index*/) const override {}
  double elapsedTime(
      void* /*event1*/,
      void* /*event2*/,
      const c10::DeviceIndex /*index*/) const override {
    return 0.0;
  }

 private:
  static c10::Stream default_stream() {
    return c10::Stream(c10::Stream::DEFAULT, sim_device());
  }
};

C10_REGISTER_GUARD_IMPL(PrivateUse1, SimGuardImpl);

// ---------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------

void check_factory_args(
    std::optional<c10::Device> device_opt,
    std::optional<c10::Layout> layout_opt,
    std::optional<bool> pin_memory_opt) {
  const auto device = c10::device_or_default(device_opt);
  TORCH_CHECK(device.is_privateuseone(), "simulated device: wrong device");
  check_index(device.index());
  TORCH_CHECK(
      c10::layout_or_default(layout_opt) == c10::Layout::Strided,
      "simulated device: only strided tensors are supported");
  TORCH_CHECK(
      !c10::pinned_memory_or_default(pin_memory_opt),
      "simulated device: only CPU tensors can be pinned");
}

at::Tensor empty_memory_format(
    c10::IntArrayRef size,
    std::optional<c10::ScalarType> dtype_opt,
    std::optional<c10::Layout> layout_opt,
    std::optional<c10::Device> device_opt,
    std::optional<bool> pin_memory_opt,
    std::optional<c10::MemoryFormat> memory_format_opt) {
  check_factory_args(device_opt, layout_opt, pin_memory_opt);
  constexpr c10::DispatchKeySet ks(c10::DispatchKey::PrivateUse1);
  return at::detail::empty_generic(
      size,
      &g_device_allocator,
      ks,
      c10::dtype_or_default(dtype_opt),
      memory_format_opt);
}

at::Tensor empty_strided(
    c10::IntArrayRef size,
    c10::IntArrayRef stride,
    std::optional<c10::ScalarType> dtype_opt,
    std::optional<c10::Layout> layout_opt,
    std::optional<c10::Device> device_opt,
    std::optional<bool> pin_memory_opt) {
  check_factory_args(device_opt, layout_opt, pin_memory_opt);
  constexpr c10::DispatchKeySet ks(c10::DispatchKey::PrivateUse1);
  return at::detail::empty_strided_generic(
      size, stride, &g_device_allocator, ks, c10::dtype_or_default(dtype_opt));
}

at::Tensor as_strided(
    const at::Tensor& self,
    c10::IntArrayRef size,
    c10::IntArrayRef stride,
    std::optional<int64_t> storage_offset) {
  return at::native::as_strided_tensorimpl(self, size, stride, storage_offset);
}

at::Tensor view(const at::Tensor& self, c10::IntArrayRef size) {
  return at::native::view(self, size);
}

at::Tensor reshape_alias(
    const at::Tensor& self,
    c10::IntArrayRef size,
    c10::IntArrayRef stride) {
  return at::native::_reshape_alias(self, size, stride);
}

at::Tensor unfold(
    const at::Tensor& self,
    int64_t dimension,
    int64_t size,
    int64_t step) {
  return at::native::unfold(self, dimension, size, step);
}

at::Tensor view_as_real(const at::Tensor& self) {
  return at::native::view_as_real(self);
}

at::Tensor view_as_complex(const at::Tensor& self) {
  return at::native::view_as_complex(self);
}

const at::Tensor& resize_(
    const at::Tensor& self,
    c10::IntArrayRef size,
    std::optional<c10::MemoryFormat> memory_format) {
  // Resizes through the storage's own allocator, i.e. g_device_allocator.
  return at::native::resize_(self, size, memory_format);
}

// A CPU tensor aliasing the (host) memory of `t`, with the same sizes,
// strides, dtype and conjugate/negative bits.
at::Tensor host_alias(const at::Tensor& t) {
  at::Tensor out;
  if (t.numel() == 0) {
    out = at::detail::empty_strided_cpu(t.sizes(), t.strides(), t.scalar_type());
  } else {
    out = at::from_blob(
        t.data_ptr(),
        t.sizes(),
        t.strides(),
        t.options().device(c10::kCPU).pinned_memory(false));
  }
  out._set_conj(t.is_conj());
  out._set_neg(t.is_neg());
  return out;
}

// Copy between sim<->sim, cpu->sim and sim->cpu.  Reached from copy_ (which
// re-dispatches to _copy_from whenever one side is not a CPU/CUDA tensor).
// Conjugate/Negative bits are honoured via host_alias; see the fallthrough
// registrations below.
at::Tensor copy_from(const at::Tensor& self, const at::Tensor& dst, bool non_blocking) {
  TORCH_CHECK(self.defined() && dst.defined(), "simulated device: undefined tensor");
  if (dst.numel() == 0) {
    return dst;
  }
  at::Tensor src_host = self.is_cpu() ? self : host_alias(self);
  if (dst.is_cpu()) {
    at::native::copy_(const_cast<at::Tensor&>(dst), src_host, non_blocking);
  } else {
    at::Tensor dst_host = host_alias(dst);
    at::native::copy_(dst_host, src_host, non_blocking);
  }
  return dst;
}

at::Tensor copy_from_and_resize(const at::Tensor& self, const at::Tensor& dst) {
  at::native::resize_(dst, self.sizes(), std::nullopt);
  return at::native::copy_(const_cast<at::Tensor&>(dst), self, false);
}

at::Scalar local_scalar_dense(const at::Tensor& self) {
  return at::native::_local_scalar_dense_cpu(host_alias(self));
}

at::Tensor& set_source_tensor(at::Tensor& self, const at::Tensor& source) {
  return at::native::set_tensor_(self, source);
}

at::Tensor& set_source_storage(at::Tensor& self, at::Storage source) {
  return at::native::set_(self, std::move(source));
}

at::Tensor& set_source_storage_offset(
    at::Tensor& self,
    at::Storage source,
    int64_t storage_offset,
    c10::IntArrayRef size,
    c10::IntArrayRef stride) {
  return at::native::set_storage_cpu_(
      self, std::move(source), storage_offset, size, stride);
}

// Lets `param.data = t` swap a CPU tensor for a simulated-device one and
// back, as it does for CPU <-> CUDA (TensorImpl's built-in rule only knows
// the in-tree dense backends).
bool has_compatible_shallow_copy_type(const at::Tensor& self, const at::Tensor& from) {
  auto dense = [](const at::Tensor& t) {
    return t.layout() == c10::kStrided && (t.is_cpu() || t.is_privateuseone());
  };
  if (dense(self) && dense(from)) {
    return true;
  }
  return self.unsafeGetTensorImpl()->has_compatible_shallow_copy_type(from.key_set());
}

void cpu_fallback(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  at::native::cpu_fallback(op, stack);
}

}  // namespace

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  m.impl("empty.memory_format", empty_memory_format);
  m.impl("empty_strided", empty_strided);
  m.impl("as_strided", as_strided);
  m.impl("view", view);
  m.impl("_reshape_alias", reshape_alias);
  m.impl("unfold", unfold);
  m.impl("view_as_real", view_as_real);
  m.impl("view_as_complex", view_as_complex);
  m.impl("resize_", resize_);
  m.impl("_copy_from", copy_from);
  m.impl("_copy_from_and_resize", copy_from_and_resize);
  m.impl("_local_scalar_dense", local_scalar_dense);
  m.impl("set_.source_Tensor", set_source_tensor);
  m.impl("set_.source_Storage", set_source_storage);
  m.impl("set_.source_Storage_storage_offset", set_source_storage_offset);
  m.impl("_has_compatible_shallow_copy_type", has_compatible_shallow_copy_type);
}

// Without these, `.cpu()` of a conj/neg view re-enters the math-bit fallback,
// which materialises the view by copying, which calls _copy_from again:
// unbounded recursion and a segfault.  copy_from handles the bits itself.
TORCH_LIBRARY_IMPL(aten, Conjugate, m) {
  m.impl("_copy_from", torch::CppFunction::makeFallthrough());
  m.impl("_copy_from_and_resize", torch::CppFunction::makeFallthrough());
}

TORCH_LIBRARY_IMPL(aten, Negative, m) {
  m.impl("_copy_from", torch::CppFunction::makeFallthrough());
  m.impl("_copy_from_and_resize", torch::CppFunction::makeFallthrough());
}

TORCH_LIBRARY_IMPL(_, PrivateUse1, m) {
  m.fallback(torch::CppFunction::makeFromBoxedFunction<&cpu_fallback>());
}

}  // namespace loaderspec_sim
