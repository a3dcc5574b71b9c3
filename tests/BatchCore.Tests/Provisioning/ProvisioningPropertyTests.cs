using BatchCore.Model;
using BatchCore.Provisioning;
using FsCheck.Xunit;

namespace BatchCore.Tests.Provisioning;

/// <summary>
/// Invariants of managed scale-out and scale-in over random workloads (seeded scenarios): provisioned vCPUs stay within
/// minvCpus..maxvCpus (+ one instance where AWS allows it), and hosts idle past the scale-down delay are removed.
/// </summary>
public class ProvisioningPropertyTests
{
    private static readonly string[] Strategies =
    [
        CRAllocationStrategy.BEST_FIT, CRAllocationStrategy.BEST_FIT_PROGRESSIVE, CRAllocationStrategy.BEST_FIT_PROGRESSIVE_ORDERED,
        CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED, CRAllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED, CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED_PRIORITIZED,
    ];

    [Property(MaxTest = 30)]
    public bool Provisioned_vcpus_stay_within_min_and_max(int seed, byte strategyIndex, bool boot)
    {
        var strategy = Strategies[strategyIndex % Strategies.Length];
        var spot = strategy.StartsWith("SPOT", StringComparison.Ordinal) || (strategy == CRAllocationStrategy.BEST_FIT && seed % 2 == 0);
        var random = new Random(seed);
        var min = random.Next(0, 3) * 2;
        var max = min + random.Next(4, 40);
        var largest = 16; // c6i/m6i up to 4xlarge below
        var overAllowed = strategy != CRAllocationStrategy.BEST_FIT || spot;
        return Scenario(seed, strategy, spot, min, max, boot, async (engine, check) =>
        {
            for (var step = 0; step < 8; step++)
            {
                for (var j = random.Next(0, 6); j > 0; j--)
                {
                    var vcpus = random.Next(1, 9);
                    await engine.SubmitJobAsync(TestEngine.Job(vcpus: vcpus, memory: vcpus * 1500, runSeconds: random.Next(10, 3600)));
                }

                await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(random.Next(1, 900)));
                var provisioned = await ManagedCe.ProvisionedAsync(engine);
                check(provisioned >= min, $"{provisioned} < minvCpus {min}");
                check(provisioned <= max + (overAllowed ? largest - 1 : 0), $"{provisioned} > maxvCpus {max} ({strategy}, spot {spot})");
            }
        });
    }

    [Property(MaxTest = 20)]
    public bool Hosts_idle_longer_than_the_scale_down_delay_are_removed(int seed, bool boot)
    {
        var random = new Random(seed);
        var min = random.Next(0, 2) * 2;
        return Scenario(seed, CRAllocationStrategy.BEST_FIT_PROGRESSIVE, spot: false, min, 64, boot, async (engine, check) =>
        {
            for (var j = random.Next(1, 12); j > 0; j--)
            {
                await engine.SubmitJobAsync(TestEngine.Job(vcpus: random.Next(1, 5), memory: 2000, runSeconds: random.Next(10, 3600)));
            }

            // Every job ends within boot (≤ 4 min) + 1 h; then the delay (20 min) and one check interval (1 min) pass.
            await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(4 + 60 + 20 + 1));
            var provisioned = await ManagedCe.ProvisionedAsync(engine);
            var hosts = await ManagedCe.HostsAsync(engine);
            check(engine.Statistics.Succeeded == engine.Statistics.Submitted, "every job ran");
            check(provisioned >= min, $"{provisioned} < minvCpus {min}");
            // Only minvCpus may keep idle hosts: removing any remaining host would go below it.
            check(hosts.All(h => provisioned - h.Vcpus < min), $"idle hosts remain: {provisioned} vCPUs with minvCpus {min}");
        });
    }

    private static bool Scenario(int seed, string strategy, bool spot, int min, int max, bool boot, Func<BatchEngine, Action<bool, string>, Task> body)
    {
        var options = new ProvisioningOptions
        {
            Ec2BootTime = boot ? TimeSpan.FromMinutes(2) : TimeSpan.Zero,
            Ec2BootJitter = boot ? TimeSpan.FromMinutes(2) : TimeSpan.Zero,
        };
        var resources = ManagedCe.Ec2(strategy, max: max, min: min, types: ["c6i.large", "c6i.xlarge", "c6i.2xlarge", "m6i.4xlarge"], type: spot ? CRType.SPOT : CRType.EC2);
        var failures = new List<string>();
        Task.Run(async () =>
        {
            var engine = await ManagedCe.CreateAsync(resources, options, seed);
            await body(engine, (ok, why) =>
            {
                if (!ok)
                {
                    failures.Add(why);
                }
            });
            await ManagedCe.DrainAndDisposeAsync(engine);
        }).GetAwaiter().GetResult();
        return failures.Count == 0 ? true : throw new InvalidOperationException(string.Join("; ", failures));
    }
}
