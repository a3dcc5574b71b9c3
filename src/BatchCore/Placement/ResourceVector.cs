using System.Runtime.CompilerServices;

namespace BatchCore.Placement;

/// <summary>
/// A capacity or a request: vCPU in milli-units (so 0.25 vCPU is exact), memory in MiB, GPUs.
/// Consumable resources are account-wide in AWS, so they are admitted by the queue layer, not carried per host.
/// </summary>
public readonly record struct ResourceVector(int VcpuMilli, int MemoryMiB, int Gpus)
{
    /// <summary>Whether <paramref name="request"/> fits in this free capacity in every dimension.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Fits(in ResourceVector request) =>
        request.VcpuMilli <= VcpuMilli && request.MemoryMiB <= MemoryMiB && request.Gpus <= Gpus;

    public static ResourceVector operator -(in ResourceVector a, in ResourceVector b) =>
        new(a.VcpuMilli - b.VcpuMilli, a.MemoryMiB - b.MemoryMiB, a.Gpus - b.Gpus);

    public static ResourceVector operator +(in ResourceVector a, in ResourceVector b) =>
        new(a.VcpuMilli + b.VcpuMilli, a.MemoryMiB + b.MemoryMiB, a.Gpus + b.Gpus);

    /// <summary><paramref name="k"/> times this request (k jobs of it; callers keep the result within a host's capacity).</summary>
    public ResourceVector Times(int k) => new(VcpuMilli * k, MemoryMiB * k, Gpus * k);

    public ResourceVector Subtract(in ResourceVector b) => this - b;

    public ResourceVector Add(in ResourceVector b) => this + b;

    /// <summary>vCPUs as a number.</summary>
    public double Vcpus => VcpuMilli / 1000.0;

    /// <summary>Converts a vCPU count to milli-units, rounding up.</summary>
    public static int ToMilli(double vcpus) => (int)Math.Ceiling(vcpus * 1000 - 1e-9);
}
