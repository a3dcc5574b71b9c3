#!/usr/bin/env bash
# A private 4-node Slurm cluster on this machine for the Slurm benchmark (the same configuration as the test fixture,
# tests/BatchCore.Tests/Hosts/Slurm/SlurmFixture.cs). Needs root and apt-get install slurm-wlm munge.
#   bench/slurm-cluster.sh start DIR   # prints the SLURM_CONF to export
#   bench/slurm-cluster.sh stop DIR    # stops the daemons by PID
set -euo pipefail
cmd=$1; dir=$(realpath -m "$2")
case "$cmd" in
start)
  mkdir -p "$dir"/{state,spool,log}
  munge -n >/dev/null 2>&1 || { mkdir -p /run/munge; chown munge:munge /run/munge; runuser -u munge -- /usr/sbin/munged; }
  base=${SLURM_BENCH_PORT:-27810}
  cat > "$dir/slurm.conf" <<CONF
ClusterName=batchcorebench
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$base
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup,task/affinity
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
MinJobAge=3600
MaxJobCount=100000
KillWait=5
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=n[1-4] NodeHostname=localhost NodeAddr=127.0.0.1 Port=[$((base+1))-$((base+4))] CPUs=2 RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  printf 'CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\nConstrainCores=yes\nConstrainRAMSpace=yes\nConstrainSwapSpace=yes\nAllowedSwapSpace=0\n' > "$dir/cgroup.conf"
  /usr/sbin/slurmctld -i -f "$dir/slurm.conf"
  for n in 1 2 3 4; do /usr/sbin/slurmd -N n$n -f "$dir/slurm.conf"; done
  export SLURM_CONF=$dir/slurm.conf
  for _ in $(seq 100); do [ "$(sinfo -h -N -o '%t' | grep -c idle)" = 4 ] && break; sleep 0.2; done
  echo "export SLURM_CONF=$dir/slurm.conf"
  ;;
stop)
  for f in "$dir"/slurmd-n*.pid "$dir"/slurmctld.pid; do [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true; done
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
